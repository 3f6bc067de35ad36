"""LoRDS (W ~ Q * (B @ A), arXiv 2601.22716) and block-wise absmax (QLoRA / NF4 style) quantization.

A QuantizedLinear holds a layer W [rows, cols] (rows = outputs) as packed codes (qweight [rows, cols * bits / 8]
uint8, little-endian within each row) plus bf16 block scales [rows, cols / block] or bf16 LoRDS factors
b [rows, rank], a [rank, cols]; W^[i, j] = codebook[code[i, j]] * S[i, j] with S = b @ a (LoRDS) or the scale of
(i, j // block). Format: docs/lords.md. bf16 arrays are ml_dtypes.bfloat16 numpy arrays.
"""
from __future__ import annotations

import numpy as np

from . import _hilo
from ._arrays import device_of, empty, is_torch, parse_device, prepare, stream_of
from ._progress import ProgressBar

QuantizedLinear = _hilo.QuantizedLinear
Codebook = _hilo.Codebook


def codebook(kind: str = "nf", bits: int = 4) -> Codebook:
    """hilo's codebook tables: "nf" (bitsandbytes' NF4 exactly, NF2/NF3 by the same rule) or "int", 2-4 bits."""
    return _hilo.make_codebook(kind, bits)


def parity_rank(rows: int, cols: int, block: int) -> int:
    """LoRDS rank with the same stored bits as block-wise scales of size `block`."""
    return _hilo.parity_rank(rows, cols, block)


def _device_index(device) -> int:
    """-1 for the CPU, else the CUDA device index (QuantConfig::device)."""
    kind, index = parse_device(device)
    return -1 if kind == "cpu" else index


def quantize(w, *, method: str = "lords", bits: int = 4, codebook: str = "nf", block: int = 64, rank: int = 0,
             optimizer: str = "adam", steps: int = -1, lr: float = 0.1, seed: int = 0, threads: int = 0,
             device="cpu", act_sq=None, progress: bool | None = None):
    """Quantizes w [rows, cols] (f32, f16 or bf16; numpy or a CPU torch tensor). Returns (QuantizedLinear, report)
    with report = {rel_error, init_rel_error, seconds, steps, trace}. rank 0 = parity with `block`; steps -1 = the
    optimizer's default (Adam 500); device "cuda[:N]" runs LoRDS' Adam refinement on that GPU (same format).
    act_sq [cols] f32 weights the error by the mean squared input activation (activation-aware)."""
    if is_torch(w) and w.device.type != "cpu":
        w = w.detach().cpu()
    bar = ProgressBar(f"quantize {method} {codebook}{bits}", progress)
    try:
        q, report = _hilo.quantize(prepare(w), method, codebook, bits, block, rank, optimizer, steps, lr, seed,
                                   threads, _device_index(device), prepare(act_sq),
                                   (lambda f: bar(f)) if bar.enabled else None)
    finally:
        bar.close()
    return q, report


def dequantize(q: QuantizedLinear) -> np.ndarray:
    """W^ as float32 [rows, cols]."""
    return _hilo.dequantize(q)


def to_device(q: QuantizedLinear, device=0):
    """The layer uploaded to a CUDA device (codes re-laid out for the tensor-core kernels), for matmul."""
    kind, index = parse_device(device)
    if kind != "cuda":
        raise ValueError(f"to_device: device = {device!r} must be a CUDA device")
    if not _hilo.built_with_cuda():
        raise _hilo.HiloError("to_device: this hilo was built without CUDA")
    return _hilo.DeviceLinear(q, index)


def matmul(q, x, *, threads: int = 0, out=None, stream=None):
    """y [batch, rows] = x [batch, cols] @ W^.T straight from the packed codes.

    CPU: q a QuantizedLinear, x float32 (numpy or torch) -> float32. CUDA: q from to_device(), x bf16 torch tensor
    (or any DLPack array with out=) on the layer's device -> bf16, queued on torch's current stream."""
    if device_of(x)[0] == "cpu":
        if not isinstance(q, QuantizedLinear):
            raise ValueError("matmul: x is on the CPU, q must be a QuantizedLinear (not a device layer)")
        y = empty(x, (x.shape[0], q.rows), "float32") if out is None else out
        _hilo.matmul_cpu(q, prepare(x), prepare(y), threads)
        return y
    if isinstance(q, QuantizedLinear):
        raise ValueError("matmul: x is on CUDA; upload the layer first with hilo.lords.to_device(q, device)")
    y = empty(x, (x.shape[0], q.rows), "bfloat16") if out is None else out
    _hilo.matmul_cuda(q, prepare(x), prepare(y), stream_of(x, stream))
    return y


def from_arrays(*, method: str, codebook: str, bits: int, block: int, rows: int, cols: int, qweight, scales=None,
                b=None, a=None) -> QuantizedLinear:
    """A QuantizedLinear from its stored arrays (numpy or CPU torch; bf16 as ml_dtypes/torch bf16 or uint16 bits),
    checked for shapes, dtypes and finite scales."""
    return QuantizedLinear.from_arrays(method, codebook, bits, block, rows, cols, prepare(qweight), prepare(scales),
                                       prepare(b), prepare(a))


def save(path: str, layers: dict, *, source_dtype: str = "BF16", extra: dict | None = None) -> None:
    """Writes {base name: QuantizedLinear} to one safetensors file in hilo's format (<base>.qweight, .scales or
    .lords_b/.lords_a, "hilo:<base>" metadata), plus any plain CPU tensors in `extra` {name: array}, atomically."""
    _hilo.save_layers(str(path), dict(layers), source_dtype,
                      {name: prepare(t) for name, t in (extra or {}).items()})


def unpack_codes(q: QuantizedLinear) -> np.ndarray:
    """The codes of a layer, one uint8 per weight [rows, cols]."""
    return _hilo.unpack_codes(q)


def pack_codes(codes, bits: int) -> np.ndarray:
    """Packs uint8 codes [rows, cols] into hilo's row layout [rows, cols * bits / 8] (little-endian bit strings)."""
    return _hilo.pack_codes(prepare(codes), bits)


def code_thresholds(cb: Codebook) -> list:
    """The midpoints hilo assigns codes by: code(x) = number of thresholds strictly below x (ties to the lower)."""
    return _hilo.code_thresholds(cb)


def load(path: str) -> dict:
    """{base name: QuantizedLinear} of every quantized layer in a file or checkpoint directory."""
    return _hilo.load_layers(str(path))


def quantize_checkpoint(model: str, out: str, *, method: str = "lords", bits: int = 4, codebook: str = "nf",
                        block: int = 64, rank: int = 0, optimizer: str = "adam", steps: int = -1, lr: float = 0.1,
                        seed: int = 0, threads: int = 0, device="cpu", include: str = r"_proj\.weight$",
                        replace: bool = False, progress: bool | None = None) -> dict:
    """`hilo quantize` from Python: a Hugging Face checkpoint (directory or .safetensors) to a new directory."""
    bar = ProgressBar("quantize", progress)
    try:
        return _hilo.quantize_checkpoint(str(model), str(out), method, codebook, bits, block, rank, optimizer, steps,
                                         lr, seed, threads, _device_index(device), include, replace,
                                         (lambda name, f: bar(f, name)) if bar.enabled else None)
    finally:
        bar.close()


def dequantize_checkpoint(quantized: str, out: str, *, replace: bool = False, progress: bool | None = None) -> None:
    """A plain bf16 checkpoint from a quantized one (every layer becomes <base>.weight)."""
    bar = ProgressBar("dequantize", progress)
    try:
        _hilo.dequantize_checkpoint(str(quantized), str(out), replace,
                                    (lambda name, f: bar(f, name)) if bar.enabled else None)
    finally:
        bar.close()


def inspect_checkpoint(path: str) -> dict:
    """Tensors, shapes, dtypes and bits per weight of a checkpoint, quantized layers described by method."""
    return _hilo.inspect_checkpoint(str(path))
