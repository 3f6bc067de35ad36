"""hilo: fast long-context, low-bit LLM inference. HISA (hierarchical sparse-attention indexer) and LoRDS (low-rank
scaled quantization) on the CPU and CUDA GPUs.

    import hilo
    idx = hilo.hisa.hisa_prefill(q, w, k, k_scale, ks, ke, topk=2048)       # numpy or torch, CPU or CUDA
    q, report = hilo.lords.quantize(weight, method="lords", bits=4)          # packed layer + error report

`hilo.torch` (imports torch) adds custom ops, LordsLinear and quantize_model. Arrays cross without copies through
DLPack; errors raise hilo.HiloError (a ValueError) naming the argument.
"""
from . import _hilo
from . import hisa, lords
from ._hilo import HiloError

__version__ = _hilo.version


def built_with_cuda() -> bool:
    """Whether this build of hilo has its CUDA kernels."""
    return _hilo.built_with_cuda()


def cuda_device_count() -> int:
    return _hilo.cuda_device_count()


__all__ = ["HiloError", "hisa", "lords", "built_with_cuda", "cuda_device_count", "__version__"]
