"""hilo's kernels as torch custom ops (torch.ops.hilo.*). Each has a fake implementation (shapes and dtypes only)
for torch.compile / meta tensors; CUDA work goes on torch's current stream. The indexer ops take check_finite: True
validates the inputs on the device first (one synchronisation); pass False inside CUDA graphs."""
from __future__ import annotations

import atexit
import itertools

import torch

from .. import _hilo, hisa, lords

_Tensor = torch.Tensor


@torch.library.custom_op("hilo::flat_prefill", mutates_args=())
def flat_prefill(q: _Tensor, w: _Tensor, k: _Tensor, k_scale: _Tensor, ks: _Tensor, ke: _Tensor, topk: int,
                 sorted: bool = False, check_finite: bool = True) -> _Tensor:
    """idx [S, topk] int32 of the flat indexer (see hilo.hisa.flat_prefill)."""
    return hisa.flat_prefill(q, w, k, k_scale, ks, ke, topk=topk, sorted=sorted, check_finite=check_finite)


@flat_prefill.register_fake
def _(q, w, k, k_scale, ks, ke, topk, sorted=False, check_finite=True):
    return q.new_empty((q.shape[0], topk), dtype=torch.int32)


@torch.library.custom_op("hilo::hisa_prefill", mutates_args=())
def hisa_prefill(q: _Tensor, w: _Tensor, k: _Tensor, k_scale: _Tensor, ks: _Tensor, ke: _Tensor, topk: int,
                 block: int = 128, blocks_kept: int = 64, sorted: bool = False, check_finite: bool = True) -> _Tensor:
    """idx [S, topk] int32 of HISA (see hilo.hisa.hisa_prefill)."""
    return hisa.hisa_prefill(q, w, k, k_scale, ks, ke, topk=topk, block=block, blocks_kept=blocks_kept,
                             sorted=sorted, check_finite=check_finite)


@hisa_prefill.register_fake
def _(q, w, k, k_scale, ks, ke, topk, block=128, blocks_kept=64, sorted=False, check_finite=True):
    return q.new_empty((q.shape[0], topk), dtype=torch.int32)


@torch.library.custom_op("hilo::flat_decode", mutates_args=())
def flat_decode(q: _Tensor, w: _Tensor, kv_cache: _Tensor, block_table: _Tensor, context_lens: _Tensor, topk: int,
                sorted: bool = False, check_finite: bool = True) -> _Tensor:
    """positions [batch * next_n, topk] int32 of the flat paged-decode indexer (see hilo.hisa.flat_decode)."""
    return hisa.flat_decode(q, w, kv_cache, block_table, context_lens, topk=topk, sorted=sorted,
                            check_finite=check_finite)


@flat_decode.register_fake
def _(q, w, kv_cache, block_table, context_lens, topk, sorted=False, check_finite=True):
    return q.new_empty((q.shape[0] * q.shape[1], topk), dtype=torch.int32)


@torch.library.custom_op("hilo::topk", mutates_args=())
def topk(scores: _Tensor, k: int, sorted: bool = False) -> _Tensor:
    """[R, k] int32 positions of the k largest scores per row (see hilo.hisa.topk)."""
    return hisa.topk(scores, k, sorted=sorted)


@topk.register_fake
def _(scores, k, sorted=False):
    return scores.new_empty((scores.shape[0], k), dtype=torch.int32)


# Quantized layers live outside the op's arguments (their codes are re-laid out for the kernels at upload): the op
# takes a layer id from register_layer. Ids are plain ints, so traced graphs keep them as constants.
_layers: dict[int, object] = {}
_next_key = itertools.count(1)


def register_layer(layer) -> int:
    """Registers a hilo.lords.QuantizedLinear (CPU) or device layer (hilo.lords.to_device) for lords_matmul."""
    key = next(_next_key)
    _layers[key] = layer
    return key


def unregister_layer(key: int) -> None:
    _layers.pop(key, None)


atexit.register(_layers.clear)  # device layers go before the interpreter (and the CUDA context) does


@torch.library.custom_op("hilo::lords_matmul", mutates_args=())
def lords_matmul(x: _Tensor, layer: int, rows: int) -> _Tensor:
    """y [..., rows] = x [..., cols] @ W^.T from the packed codes. CUDA: bf16 in and out (the fused kernels); CPU:
    computed in f32 (hilo's CPU kernels) and returned in x's dtype."""
    q = _layers[layer]
    x2 = x.reshape(-1, x.shape[-1])
    if x.is_cuda:
        y = lords.matmul(q, x2.to(torch.bfloat16).contiguous())
    else:
        y = lords.matmul(q, x2.float().contiguous()).to(x.dtype)
    return y.reshape(*x.shape[:-1], rows)


@lords_matmul.register_fake
def _(x, layer, rows):
    return x.new_empty((*x.shape[:-1], rows), dtype=torch.bfloat16 if x.is_cuda else x.dtype)


WITH_CUDA = _hilo.built_with_cuda()  # a constant, so compiled graphs need not call into the extension


def built_with_cuda() -> bool:
    return WITH_CUDA
