"""HISA and the flat DSA "lightning indexer" (DeepGEMM's semantics), on the CPU or a CUDA GPU by where the inputs live.

For query s and key n in [ks[s], ke[s]):  I[s, n] = sum_h w[s, h] * relu(dot(q[s, h], k[n]) * k_scale[n]);
each output row holds the topk n with the largest I as n - ks[s] (ties: smaller n), -1 padded. HISA scores mean-pooled
blocks of `block` keys first, keeps `blocks_kept` of them (the first and last eligible block always), and returns the
exact top-k among the tokens of the kept blocks. Equivalent plain code: README.md ("Python").

Dtypes: q [S, H, D] and k [N, D] are fp8 e4m3 (torch.float8_e4m3fn, ml_dtypes.float8_e4m3fn, or uint8 bit patterns),
bf16 or f32 on the CPU; fp8 on CUDA (H = 16..64 in steps of 16, D = 128). w [S, H] f32, k_scale [N] f32, ks/ke [S]
int32. Outputs are int32 arrays of the caller's library (numpy or torch) on the inputs' device; CUDA work is queued
on torch's current stream (or `stream=`).
"""
from __future__ import annotations

from . import _hilo
from ._arrays import as_ml_dtype, device_of, empty, parse_device, prepare, stream_of


def _fp8(x):
    return prepare(x, uint8_is_fp8=True)


def flat_prefill(q, w, k, k_scale, ks, ke, *, topk: int = 2048, sorted: bool = False, threads: int = 0,
                 check_finite: bool = True, out=None, stream=None):
    """The flat indexer: idx [S, topk] int32 (positions relative to ks, -1 padded)."""
    idx = empty(q, (q.shape[0], topk), "int32") if out is None else out
    _hilo.flat_prefill(_fp8(q), prepare(w), _fp8(k), prepare(k_scale), prepare(ks), prepare(ke), prepare(idx),
                       topk, sorted, threads, check_finite, stream_of(q, stream))
    return idx


def hisa_prefill(q, w, k, k_scale, ks, ke, *, topk: int = 2048, block: int = 128, blocks_kept: int = 64,
                 pooled: str = "fp8", sorted: bool = False, threads: int = 0, check_finite: bool = True, out=None,
                 stream=None, return_stats: bool = False):
    """HISA: idx [S, topk] int32, the same contract as flat_prefill. With return_stats, (idx, stage times and the
    mean blocks kept / tile union / candidates per query); on CUDA the stage times wait for the stream."""
    idx = empty(q, (q.shape[0], topk), "int32") if out is None else out
    stats = _hilo.hisa_prefill(_fp8(q), prepare(w), _fp8(k), prepare(k_scale), prepare(ks), prepare(ke),
                               prepare(idx), topk, sorted, threads, check_finite, block, blocks_kept, pooled,
                               stream_of(q, stream), return_stats)
    return (idx, stats) if return_stats else idx


class PooledKeyCache:
    """Pooled block keys of every request of a paged KV cache, kept up to date by hisa_decode as tokens arrive.

    On the CPU: any number of requests, `format` fp8 | bf16 | f32. On CUDA (device="cuda[:i]"): fp8, sized for
    max_batch requests of up to max_blocks blocks."""

    def __init__(self, head_dim: int = 128, block: int = 128, format: str = "fp8", device="cpu",
                 max_batch: int | None = None, max_blocks: int | None = None):
        kind, index = parse_device(device)
        self.device = (kind, index)
        if kind == "cpu":
            self._cache = _hilo.PooledKeyCacheCpu(head_dim, block, format)
        else:
            if max_batch is None or max_blocks is None:
                raise ValueError("PooledKeyCache: a CUDA cache needs max_batch and max_blocks")
            if format != "fp8":
                raise ValueError(f"PooledKeyCache: format = {format!r}: the CUDA cache holds fp8 pooled keys")
            self._cache = _hilo.PooledKeyCacheCuda(index, max_batch, max_blocks, block, head_dim)

    @property
    def block(self) -> int:
        return self._cache.block

    def reset(self, request: int | None = None, stream=None) -> None:
        """Forget one request (CPU) or every request (CUDA, request=None)."""
        if self.device[0] == "cpu":
            if request is None:
                raise ValueError("PooledKeyCache.reset: the CPU cache resets one request at a time")
            self._cache.reset(request)
        else:
            if request is not None:
                raise ValueError("PooledKeyCache.reset: the CUDA cache resets every request at once (request=None)")
            self._cache.reset(int(getattr(stream, "cuda_stream", stream or 0)))



def _decode_outputs(q, topk: int, positions: bool, slots: bool):
    rows = q.shape[0] * q.shape[1]
    return (empty(q, (rows, topk), "int32") if positions else None,
            empty(q, (rows, topk), "int32") if slots else None)


def _decode_result(pos, slot):
    if pos is not None and slot is not None:
        return pos, slot
    return pos if pos is not None else slot


def flat_decode(q, w, kv_cache, block_table, context_lens, *, topk: int = 2048, sorted: bool = False,
                threads: int = 0, check_finite: bool = True, positions: bool = True, slots: bool = False,
                stream=None):
    """Flat indexer over a paged cache (DeepGEMM's SM90 layout: kv_cache [pages, 64, D + 4] uint8). q [batch,
    next_n, H, D]; w [batch * next_n, H]; block_table [batch, max_pages] int32; context_lens [batch] or
    [batch, next_n] int32. Returns positions [batch * next_n, topk] int32 (and/or slots = page * 64 + offset).
    check_finite=False (serving, CUDA graphs) on CUDA: nothing is validated up front and nothing synchronises; a
    request whose length or page indices are out of range then gets -1 rows instead of an error (the CPU path
    always checks them)."""
    pos, slot = _decode_outputs(q, topk, positions, slots)
    _hilo.flat_decode(_fp8(q), prepare(w), prepare(kv_cache), prepare(block_table), prepare(context_lens),
                      prepare(pos), prepare(slot), topk, sorted, threads, check_finite, stream_of(q, stream))
    return _decode_result(pos, slot)


def hisa_decode(q, w, kv_cache, block_table, context_lens, cache: PooledKeyCache, *, topk: int = 2048,
                blocks_kept: int = 64, sorted: bool = False, threads: int = 0, check_finite: bool = True,
                positions: bool = True, slots: bool = False, stream=None, return_stats: bool = False):
    """HISA decode: brings `cache` up to date with context_lens, then block selection and exact token top-k.
    Arguments and result as flat_decode. On CUDA, return_stats (stage timings) waits for the stream."""
    pos, slot = _decode_outputs(q, topk, positions, slots)
    if cache.device[0] == "cpu":
        stats = _hilo.hisa_decode_cpu(_fp8(q), prepare(w), prepare(kv_cache), prepare(block_table),
                                      prepare(context_lens), cache._cache, prepare(pos), prepare(slot), topk, sorted,
                                      threads, check_finite, blocks_kept)
    else:
        stats = _hilo.hisa_decode_cuda(_fp8(q), prepare(w), prepare(kv_cache), prepare(block_table),
                                       prepare(context_lens), cache._cache, prepare(pos), prepare(slot), topk, sorted,
                                       check_finite, blocks_kept, stream_of(q, stream), return_stats)
    result = _decode_result(pos, slot)
    return (result, stats) if return_stats else result


def pool_keys(k, k_scale, *, block: int = 128, format: str = "fp8", stream=None):
    """Mean-pooled block keys (what HISA's first stage scores): (codes [NB, D], scale [NB] f32), codes in `format`
    (ml_dtypes float8_e4m3fn / bfloat16 for numpy, torch dtypes for torch)."""
    if device_of(k)[0] == "cpu":
        codes, scale = _hilo.pool_keys_cpu(_fp8(k), prepare(k_scale), block, format)
        if hasattr(k, "detach"):  # torch in, torch out
            import torch
            codes = torch.from_numpy(codes)
            if format == "fp8":
                codes = codes.view(torch.float8_e4m3fn)
            elif format == "bf16":
                codes = codes.view(torch.bfloat16)
            return codes, torch.from_numpy(scale)
        return as_ml_dtype(codes, {"fp8": "F8_E4M3", "bf16": "BF16"}.get(format)), scale
    import torch
    blocks = (k.shape[0] + block - 1) // block
    codes = torch.empty((blocks, k.shape[1]), dtype=torch.float8_e4m3fn, device=k.device)
    scale = torch.empty((blocks,), dtype=torch.float32, device=k.device)
    _hilo.pool_keys_cuda(_fp8(k), prepare(k_scale), block, prepare(codes), prepare(scale), stream_of(k, stream))
    return codes, scale


def topk(scores, k: int, *, starts=None, ends=None, sorted: bool = False, threads: int = 0, out=None, stream=None):
    """Positions of the k largest scores of each row of scores [R, L] f32 -> [R, k] int32 (ties to the smaller
    position, NaN never selected, -1 padded). With starts/ends [R] int32 (CPU), row r considers [starts[r], ends[r])
    and positions are relative to starts[r]."""
    idx = empty(scores, (scores.shape[0], k), "int32") if out is None else out
    _hilo.topk(prepare(scores), k, prepare(idx), prepare(starts), prepare(ends), sorted, threads,
               stream_of(scores, stream))
    return idx


def cpu_kernel() -> str:
    """The CPU scoring kernel in use: "avx512" or "portable"."""
    return _hilo.cpu_kernel()


def synthetic_prefill(*, context: int = 8192, queries: int = 256, heads: int = 64, dim: int = 128,
                      dtype: str = "fp8", seed: int = 0, needles: int = 8) -> dict:
    """Generated indexer inputs with long-context attention's structure (docs/hisa.md, "Synthetic data"): numpy
    arrays q, w, k, k_scale, ks, ke (q and k as ml_dtypes float8_e4m3fn / bfloat16 or float32) and needles
    [(row, key position)]."""
    names = {"fp8": "F8_E4M3", "bf16": "BF16", "f32": "F32"}
    if dtype not in names:
        raise ValueError(f"synthetic_prefill: dtype = {dtype!r} must be one of {sorted(names)}")
    d = _hilo.synthetic_prefill(context, queries, heads, dim, names[dtype], seed, needles)
    d["q"], d["k"] = as_ml_dtype(d["q"], names[dtype]), as_ml_dtype(d["k"], names[dtype])
    return d


def synthetic_decode(*, context: int = 8192, batch: int = 4, next_n: int = 1, heads: int = 64, dim: int = 128,
                     seed: int = 0, needles: int = 8) -> dict:
    """Generated paged-decode inputs: q (ml_dtypes float8_e4m3fn), w, kv_cache, block_table, context_lens, needles."""
    d = _hilo.synthetic_decode(context, batch, next_n, heads, dim, seed, needles)
    d["q"] = as_ml_dtype(d["q"], "F8_E4M3")
    return d
