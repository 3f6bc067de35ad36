#!/usr/bin/env python3
"""Issue 7's evidence on the fixture model (../shared/fixtures/tinylm): LoRDS PEFT against QLoRA and against no
fine-tuning (NF4, NF3), QAT at 2 and 3 bits against PTQ alone, and the HISA op against the C++ API.

Split: non-overlapping 512-token windows of validation_tokens; the first 80% of the tokens train, the last 20%
evaluate (perplexity = exp(mean next-token cross-entropy)). Weights bf16 as stored, compute f32, TF32 off.
Writes a JSON file and prints tables. Usage (device): python3 scripts/experiments/peft_qat.py --model DIR --out F
"""
from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
from safetensors.numpy import load_file
from torch import nn

import hilo
import hilo.torch as ht

WINDOW = 512


def windows(tokens: np.ndarray) -> torch.Tensor:
    n = len(tokens) // WINDOW
    return torch.from_numpy(tokens[: n * WINDOW].astype(np.int64).reshape(n, WINDOW))


def load_model(path: str, device: str):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(path, torch_dtype=torch.float32)
    return model.to(device).eval()


def loss_of(model, batch: torch.Tensor) -> torch.Tensor:
    logits = model(input_ids=batch).logits
    return nn.functional.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]).float(),
                                       batch[:, 1:].reshape(-1))


@torch.no_grad()
def perplexity(model, data: torch.Tensor, device: str, batch: int = 32) -> float:
    model.eval()
    total, count = 0.0, 0
    for i in range(0, len(data), batch):
        x = data[i:i + batch].to(device)
        total += loss_of(model, x).item() * x.shape[0] * (WINDOW - 1)
        count += x.shape[0] * (WINDOW - 1)
    return math.exp(total / count)


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def train(model, params, data: torch.Tensor, device: str, steps: int, batch: int, lrs: list[float], seed: int):
    """AdamW (no weight decay), cosine decay, fixed budget; returns (mean step ms, final train loss)."""
    groups = [{"params": p, "lr": lr} for p, lr in zip(params, lrs)]
    opt = torch.optim.AdamW(groups, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * s / steps)))
    g = torch.Generator().manual_seed(seed)
    model.train()
    times, last = [], float("nan")
    for step in range(steps):
        idx = torch.randint(0, len(data), (batch,), generator=g)
        x = data[idx].to(device)
        sync(device)
        t0 = time.perf_counter()
        loss = loss_of(model, x)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        sync(device)
        times.append(time.perf_counter() - t0)
        last = loss.item()
    model.eval()
    return 1000 * float(np.median(times[min(5, steps - 1):])), last


class LoraLinear(nn.Module):
    """QLoRA's adapter: a frozen quantized base plus x @ A^T @ B^T (B zero-initialised), scale alpha / r = 1."""

    def __init__(self, base: ht.LordsLinear, rank: int):
        super().__init__()
        self.base = base
        self.lora_a = nn.Parameter(torch.empty(rank, base.in_features, device=base.codes.device))
        self.lora_b = nn.Parameter(torch.zeros(base.out_features, rank, device=base.codes.device))
        nn.init.kaiming_uniform_(self.lora_a, a=math.sqrt(5))

    def forward(self, x):
        with torch.no_grad():
            y = self.base(x)
        return y + (x @ self.lora_a.T) @ self.lora_b.T


def lords_layers(model):
    return [(n, m) for n, m in model.named_modules() if isinstance(m, ht.LordsLinear)]


def quantize(model, method: str, bits: int, device: str, peft: bool = False):
    t0 = time.perf_counter()
    reports = ht.quantize_model(model, method=method, bits=bits, block=64, device=device if method == "lords" else "cpu",
                                peft=peft, progress=False)
    return time.perf_counter() - t0, float(np.mean([r["rel_error"] for r in reports.values()]))


def peft_runs(args, train_data, eval_data, device):
    rows = []
    for bits, lr in [(b, lr) for b in (4, 3) for lr in args.peft_lrs]:
        args.lr_lords = args.lr_lora = lr
        # LoRDS: PTQ, then PEFT of B and A (codes frozen).
        model = load_model(args.model, device)
        secs, err = quantize(model, "lords", bits, device, peft=True)
        ppl_ptq = perplexity(model, eval_data, device)
        params = [p for _, m in lords_layers(model) for p in (m.lords_b, m.lords_a)]
        for p in model.parameters():
            p.requires_grad_(False)
        for p in params:
            p.requires_grad_(True)
        trainable = sum(p.numel() for p in params)
        ranks = {n: m.rank for n, m in lords_layers(model)}
        ms, loss = train(model, [params], train_data, device, args.steps, args.batch, [args.lr_lords], args.seed)
        ppl_peft = perplexity(model, eval_data, device)
        with tempfile.TemporaryDirectory() as tmp:  # export: plain hilo format, nothing to merge
            ht.save_quantized(model, tmp)
            reloaded = ht.load_quantized(load_model(args.model, device), tmp)
            ppl_export = perplexity(reloaded, eval_data, device)
        rows.append(dict(bits=bits, lr=lr, method="LoRDS PEFT (B, A)", ptq_ppl=ppl_ptq, ppl=ppl_peft, exported_ppl=ppl_export,
                         trainable=trainable, step_ms=ms, final_train_loss=loss, ptq_seconds=secs, ptq_rel_error=err))
        # QLoRA: block-wise NF base + LoRA adapters with the same number of trainable parameters per layer.
        model = load_model(args.model, device)
        secs, err = quantize(model, "blockwise", bits, device)
        ppl_base = perplexity(model, eval_data, device)
        for p in model.parameters():
            p.requires_grad_(False)
        adapters = []
        for name, m in lords_layers(model):
            lora = LoraLinear(m, ranks[name])
            ht.model._set_module(model, name, lora)
            adapters += [lora.lora_a, lora.lora_b]
        ms, loss = train(model, [adapters], train_data, device, args.steps, args.batch, [args.lr_lora], args.seed)
        rows.append(dict(bits=bits, lr=lr, method="QLoRA (block-wise NF + LoRA)", ptq_ppl=ppl_base,
                         ppl=perplexity(model, eval_data, device), exported_ppl=None,
                         trainable=sum(p.numel() for p in adapters), step_ms=ms, final_train_loss=loss,
                         ptq_seconds=secs, ptq_rel_error=err))
        print(json.dumps(rows[-2:], indent=1), flush=True)
    return rows


def qat_runs(args, train_data, eval_data, device):
    rows = []
    original = load_model(args.model, device)
    weights = {n: m.weight.detach().clone() for n, m in original.named_modules() if isinstance(m, nn.Linear)}
    for bits in (3, 2):
        model = load_model(args.model, device)
        secs, err = quantize(model, "lords", bits, device)
        ppl_ptq = perplexity(model, eval_data, device)
        for p in model.parameters():
            p.requires_grad_(False)
        latent, factors = [], []
        for name, m in lords_layers(model):
            m.enable_qat(weights[name])
            latent.append(m.latent_weight)
            factors += [m.lords_b, m.lords_a]
        ms, loss = train(model, [latent, factors], train_data, device, args.qat_steps, args.batch,
                         [args.lr_qat_weight, args.lr_lords], args.seed)
        ppl_qat = perplexity(model, eval_data, device)
        with tempfile.TemporaryDirectory() as tmp:
            ht.save_quantized(model, tmp)
            reloaded = ht.load_quantized(load_model(args.model, device), tmp)
            ppl_export = perplexity(reloaded, eval_data, device)
        rows.append(dict(bits=bits, ptq_ppl=ppl_ptq, qat_ppl=ppl_qat, exported_ppl=ppl_export, steps=args.qat_steps,
                         step_ms=ms, final_train_loss=loss, ptq_seconds=secs, ptq_rel_error=err))
        print(json.dumps(rows[-1], indent=1), flush=True)
    return rows


def hisa_op_check(args, device):
    """torch.ops.hilo.hisa_prefill on torch tensors against the C++ API (the `hilo hisa` CLI on the same inputs,
    CPU: exact), and the CUDA op against the CPU (sets equal up to documented score ties)."""
    d = hilo.hisa.synthetic_prefill(context=16384, queries=256, heads=64, dim=128, seed=args.seed)
    names = ("q", "w", "k", "k_scale", "ks", "ke")

    def as_torch(v):
        v = np.asarray(v)
        t = torch.from_numpy(v.view(np.uint8) if v.dtype.itemsize == 1 else v)
        return t.view(torch.float8_e4m3fn) if v.dtype.itemsize == 1 else t

    cpu = [as_torch(d[n]) for n in names]
    op_cpu = torch.ops.hilo.hisa_prefill(*cpu, 2048, 128, 64)
    result = {"context": 16384, "queries": 256}
    with tempfile.TemporaryDirectory() as tmp:
        from safetensors.torch import save_file

        save_file({n: t.view(torch.uint8) if t.dtype == torch.float8_e4m3fn else t for n, t in zip(names, cpu)},
                  os.path.join(tmp, "in.safetensors"))
        # The CLI reads fp8 tensors by their safetensors dtype: rewrite the two uint8 views' dtype tags.
        path = os.path.join(tmp, "in.safetensors")
        with open(path, "rb") as f:
            raw = f.read()
        n = int.from_bytes(raw[:8], "little")
        header = json.loads(raw[8:8 + n])
        for name in ("q", "k"):
            header[name]["dtype"] = "F8_E4M3"
        text = json.dumps(header).encode()
        text += b" " * ((8 - len(text) % 8) % 8)
        with open(path, "wb") as f:
            f.write(len(text).to_bytes(8, "little") + text + raw[8 + n:])
        out = os.path.join(tmp, "out.safetensors")
        subprocess.run([args.hilo, "hisa", "--input", path, "--output", out, "--topk", "2048", "--block", "128",
                        "--blocks", "64"], check=True, capture_output=True)
        cli = load_file(out)["hisa_idx"]
    result["cpu_op_equals_cli"] = bool(np.array_equal(np.sort(op_cpu.numpy(), 1), np.sort(cli, 1)))
    if device == "cuda":
        op_gpu = torch.ops.hilo.hisa_prefill(*[t.cuda() for t in cpu], 2048, 128, 64).cpu().numpy()
        sets = [(set(a.tolist()) - {-1}, set(b.tolist()) - {-1}) for a, b in zip(op_gpu, op_cpu.numpy())]
        iou = [len(a & b) / max(1, len(a | b)) for a, b in sets]
        result["cuda_rows_equal_to_cpu"] = float(np.mean([a == b for a, b in sets]))
        result["cuda_vs_cpu_iou_mean"], result["cuda_vs_cpu_iou_min"] = float(np.mean(iou)), float(np.min(iou))
        result["cuda_vs_cpu_max_differing"] = max(len(a ^ b) for a, b in sets)
        flat_gpu = torch.ops.hilo.flat_prefill(*[t.cuda() for t in cpu], 2048).cpu().numpy()
        flat_cpu = torch.ops.hilo.flat_prefill(*cpu, 2048).numpy()
        fsets = [(set(a.tolist()) - {-1}, set(b.tolist()) - {-1}) for a, b in zip(flat_gpu, flat_cpu)]
        result["flat_cuda_rows_equal_to_cpu"] = float(np.mean([a == b for a, b in fsets]))
        result["flat_cuda_vs_cpu_iou_min"] = float(np.min([len(a & b) / max(1, len(a | b)) for a, b in fsets]))
        result["cuda_op_equals_direct_api"] = bool(np.array_equal(
            op_gpu, hilo.hisa.hisa_prefill(*[t.cuda() for t in cpu], topk=2048).cpu().numpy()))
    print(json.dumps(result), flush=True)
    return result


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--hilo", default="build/cli/hilo", help="the hilo CLI (for the C++ API comparison)")
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--qat-steps", type=int, default=300)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--lr-lords", type=float, default=2e-4, help="QAT: learning rate of B and A")
    p.add_argument("--peft-lrs", default="2e-4", help="PEFT learning rates, comma separated (each runs both methods)")
    p.add_argument("--lr-qat-weight", type=float, default=5e-5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--parts", default="hisa,peft,qat")
    p.add_argument("--eval-limit", type=int, default=0, help="evaluate on this many windows only (smoke runs)")
    args = p.parse_args()
    args.peft_lrs = [float(v) for v in args.peft_lrs.split(",")]
    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.manual_seed(args.seed)
    tokens = load_file(os.path.join(args.model, "validation_tokens.safetensors"))["tokens"]
    split = int(0.8 * len(tokens))
    train_data, eval_data = windows(tokens[:split]), windows(tokens[split:])
    if args.eval_limit:
        eval_data = eval_data[: args.eval_limit]
    results = {"device": torch.cuda.get_device_name() if device == "cuda" else "cpu", "torch": torch.__version__,
               "hilo": hilo.__version__, "train_windows": len(train_data), "eval_windows": len(eval_data),
               "args": vars(args), "date": time.strftime("%Y-%m-%d")}
    results["fp_ppl"] = perplexity(load_model(args.model, device), eval_data, device)
    print(f"full precision: {results['fp_ppl']:.3f}", flush=True)
    parts = args.parts.split(",")
    if "hisa" in parts:
        results["hisa_op"] = hisa_op_check(args, device)
    if "peft" in parts:
        results["peft"] = peft_runs(args, train_data, eval_data, device)
    if "qat" in parts:
        results["qat"] = qat_runs(args, train_data, eval_data, device)
    with open(args.out + ".tmp", "w") as f:
        json.dump(results, f, indent=1)
    os.replace(args.out + ".tmp", args.out)


if __name__ == "__main__":
    sys.exit(main())
