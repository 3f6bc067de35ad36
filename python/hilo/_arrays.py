"""Arrays in and out of the extension: which library a caller uses (numpy, torch, anything with __dlpack__), the
dtype tags for types numpy lacks, outputs allocated next to the inputs, and the caller's CUDA stream."""
from __future__ import annotations

import numpy as np

# numpy has no fp8/bf16 of its own: ml_dtypes arrays and torch fp8 tensors cross as integer views with a tag.
_NUMPY_TAGS = {"float8_e4m3fn": (np.uint8, "F8_E4M3"), "float8_e5m2": (np.uint8, "F8_E5M2"),
               "bfloat16": (np.uint16, "BF16")}
_TORCH_TAGS = {"torch.float8_e4m3fn": "F8_E4M3", "torch.float8_e5m2": "F8_E5M2"}


def is_torch(x) -> bool:
    return type(x).__module__.split(".")[0] == "torch"


def prepare(x, *, uint8_is_fp8: bool = False):
    """What the extension takes for `x`: the array itself, or (integer view, dtype name). None stays None."""
    if x is None:
        return None
    if is_torch(x):
        x = x.detach()
        tag = _TORCH_TAGS.get(str(x.dtype))
        if tag:
            import torch
            return (x.view(torch.uint8), tag)
        if uint8_is_fp8 and str(x.dtype) == "torch.uint8":
            return (x, "F8_E4M3")
        return x
    if not isinstance(x, np.ndarray) and hasattr(x, "__dlpack__"):
        return x  # cupy, jax, ...: DLPack as is
    x = np.asarray(x)
    tag = _NUMPY_TAGS.get(x.dtype.name)
    if tag:
        return (x.view(tag[0]), tag[1])
    if uint8_is_fp8 and x.dtype == np.uint8:
        return (x, "F8_E4M3")
    return x


def parse_device(device) -> tuple[str, int]:
    """("cpu", 0) or ("cuda", index) from "cpu", "cuda", "cuda:N" or a device index."""
    text = str(device)
    if text == "cpu":
        return ("cpu", 0)
    if text == "cuda":
        return ("cuda", 0)
    if text.startswith("cuda:") and text[5:].isdigit():
        return ("cuda", int(text[5:]))
    if isinstance(device, int) and device >= 0:
        return ("cuda", device)
    raise ValueError(f"device = {device!r}: expected 'cpu', 'cuda' or 'cuda:N'")


def as_ml_dtype(x: np.ndarray, tag: str | None) -> np.ndarray:
    """The integer view `x` of fp8/bf16 bits (as the extension returns them) seen as the ml_dtypes type."""
    if tag not in ("F8_E4M3", "F8_E5M2", "BF16"):
        return x
    import ml_dtypes
    return x.view({"F8_E4M3": ml_dtypes.float8_e4m3fn, "F8_E5M2": ml_dtypes.float8_e5m2,
                   "BF16": ml_dtypes.bfloat16}[tag])


def device_of(x) -> tuple[str, int]:
    """("cpu", 0) or ("cuda", index)."""
    if is_torch(x):
        return (x.device.type, x.device.index or 0) if x.device.type == "cuda" else ("cpu", 0)
    if hasattr(x, "__dlpack_device__") and not isinstance(x, np.ndarray):
        kind, index = x.__dlpack_device__()
        return ("cuda", int(index)) if int(kind) in (2, 13) else ("cpu", 0)
    return ("cpu", 0)


_TORCH_DTYPES = {"int32": "int32", "float32": "float32", "bfloat16": "bfloat16", "uint8": "uint8"}


def empty(like, shape, dtype: str):
    """An uninitialised output in the library and on the device of `like` (numpy when `like` is not torch)."""
    if is_torch(like):
        import torch
        return torch.empty(tuple(shape), dtype=getattr(torch, _TORCH_DTYPES[dtype]), device=like.device)
    if device_of(like)[0] == "cuda":
        raise ValueError("hilo: outputs for CUDA arrays other than torch tensors must be passed as out=")
    return np.empty(tuple(shape), dtype=dtype)


def stream_of(x, stream=None) -> int:
    """The CUDA stream to queue on: `stream` if given (int or torch.cuda.Stream), else torch's current stream for a
    torch CUDA tensor, else 0 (the default stream)."""
    if stream is not None:
        return int(getattr(stream, "cuda_stream", stream))
    if is_torch(x) and x.device.type == "cuda":
        import torch
        return torch.cuda.current_stream(x.device).cuda_stream
    return 0
