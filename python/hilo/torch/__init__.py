"""PyTorch integration (imports torch; `import hilo` alone does not).

- Custom ops under torch.ops.hilo (registered with torch.library, with fake implementations, so they trace under
  torch.compile and replay in CUDA graphs): flat_prefill, hisa_prefill, flat_decode, topk, lords_matmul.
- LordsLinear: an nn.Module holding a packed LoRDS or block-wise layer, with an autograd backward (gradients to
  the input and, for PEFT, to the LoRDS factors B and A with the codes frozen) and a QAT mode (full-precision latent
  weight, straight-through rounding, exact gradients through the scale).
- quantize_model / save_quantized / load_quantized for Hugging Face causal LMs, in hilo's checkpoint format.
"""
try:
    import torch  # noqa: F401
except ImportError as e:  # pragma: no cover - exercised only without torch
    raise ImportError("hilo.torch needs PyTorch (pip install torch); the rest of hilo works without it") from e

from . import ops
from .linear import LordsLinear
from .model import load_quantized, quantize_model, save_quantized

__all__ = ["ops", "LordsLinear", "quantize_model", "save_quantized", "load_quantized"]
