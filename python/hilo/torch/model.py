"""Whole models: replace the linear layers of a (Hugging Face) causal LM with LordsLinear, and save / load the result
in hilo's checkpoint format (a directory with model.safetensors: quantized layers as <base>.qweight + factors or
scales with "hilo:<base>" metadata, every other tensor as is; config.json when the model has one). The saved
directory has the layout `hilo quantize` writes (`hilo inspect` / hilo.lords.inspect_checkpoint read it; tested)."""
from __future__ import annotations

import json
import os
import re
import tempfile

import torch
from torch import nn

from .. import lords
from .._progress import ProgressBar
from .linear import LordsLinear

DEFAULT_INCLUDE = r"_proj$"  # Llama/Mistral/Qwen projection layers; embeddings, norms and lm_head stay


def _linear_layers(model: nn.Module, include: str):
    pattern = re.compile(include)
    return [(name, m) for name, m in model.named_modules() if isinstance(m, nn.Linear) and pattern.search(name)]


def _set_module(model: nn.Module, name: str, module: nn.Module) -> None:
    parent, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, child, module)


def quantize_model(model: nn.Module, *, method: str = "lords", bits: int = 4, codebook: str = "nf", block: int = 64,
                   rank: int = 0, steps: int = -1, include: str = DEFAULT_INCLUDE, device="cpu", peft: bool = False,
                   progress: bool | None = None, **quant_options) -> dict:
    """Quantizes every nn.Linear whose name matches `include` in place (hilo.lords.quantize per layer; device
    "cuda[:N]" refines LoRDS on that GPU) and returns {name: report}. peft=True leaves B and A trainable."""
    layers = _linear_layers(model, include)
    if not layers:
        raise ValueError(f"quantize_model: no nn.Linear matches include = {include!r}")
    bar = ProgressBar(f"quantize_model {method} {codebook}{bits}", progress)
    reports = {}
    try:
        total = sum(m.weight.numel() for _, m in layers)
        done = 0
        for name, linear in layers:
            bar(done / total, name)
            q, report = lords.quantize(linear.weight.detach().float().cpu(), method=method, bits=bits,
                                       codebook=codebook, block=block, rank=rank, steps=steps, device=device,
                                       progress=False, **quant_options)
            module = LordsLinear(q, linear.bias, peft=peft).to(linear.weight.device)
            _set_module(model, name, module)
            reports[name] = report
            done += linear.weight.numel()
        bar(1.0)
    finally:
        bar.close()
    return reports


def _plain_tensors(model: nn.Module, quantized: set) -> dict:
    """Every parameter and persistent buffer outside the quantized layers, as contiguous CPU tensors."""
    out = {}
    for name, t in model.state_dict().items():
        base = name.rsplit(".", 1)[0]
        if base in quantized and not name.endswith(".bias"):
            continue
        out[name] = t.detach().cpu().contiguous()
    return out


def save_quantized(model: nn.Module, directory: str, *, source_dtype: str = "BF16") -> None:
    """Writes the model to `directory` in hilo's checkpoint format (LoRDS factors exported to bf16: nothing to
    merge). The file appears atomically."""
    os.makedirs(directory, exist_ok=True)
    layers = {name: m.export() for name, m in model.named_modules() if isinstance(m, LordsLinear)}
    extra = _plain_tensors(model, set(layers))
    lords.save(os.path.join(directory, "model.safetensors"), layers, source_dtype=source_dtype, extra=extra)
    config = getattr(model, "config", None)
    if config is not None and hasattr(config, "to_dict"):
        fd, tmp = tempfile.mkstemp(dir=directory, suffix=".json.tmp")
        with os.fdopen(fd, "w") as f:
            json.dump(config.to_dict(), f, indent=2, default=str)
        os.replace(tmp, os.path.join(directory, "config.json"))


def load_quantized(model: nn.Module, path: str, *, peft: bool = False) -> nn.Module:
    """Loads a hilo checkpoint (directory or .safetensors) into `model` (built with the same architecture):
    quantized layers become LordsLinear, the remaining tensors are loaded with load_state_dict."""
    layers = lords.load(path)
    for name, q in layers.items():
        current = model.get_submodule(name)
        bias = getattr(current, "bias", None)
        device = next(current.parameters()).device if any(True for _ in current.parameters()) else "cpu"
        _set_module(model, name, LordsLinear(q, bias, peft=peft).to(device))
    from safetensors.torch import load_file

    file = path if os.path.isfile(path) else os.path.join(path, "model.safetensors")
    state = {k: v for k, v in load_file(file).items() if k.rsplit(".", 1)[0] not in layers or k.endswith(".bias")}
    missing, unexpected = model.load_state_dict(state, strict=False)
    unexpected = [k for k in unexpected if not any(k.startswith(n + ".") for n in layers)]
    if unexpected:
        raise ValueError(f"load_quantized: tensors the model does not have: {unexpected[:5]}")
    return model
