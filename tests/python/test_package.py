"""The Python package on the CPU with numpy: every API against plain numpy reference code, the spec's identities,
poisoned outputs, and bad input refused with errors that name the argument. Torch is never imported here."""
import subprocess
import sys

import ml_dtypes
import numpy as np
import pytest

from package_util import import_hilo

hilo = import_hilo()


def scores_f64(q, w, k, k_scale):
    """I[s, n] = sum_h w[s, h] relu(dot(q[s, h], k[n]) k_scale[n]) in float64."""
    logits = np.einsum("shd,nd->shn", q.astype(np.float64), k.astype(np.float64)) * k_scale[None, None, :]
    return np.einsum("sh,shn->sn", w.astype(np.float64), np.maximum(logits, 0))


def check_topk_rows(idx, scores, ks, ke, topk, tol=1e-9):
    """Each row: the top-k of scores[s, ks:ke] as positions relative to ks; sets may differ only at ties."""
    for s in range(idx.shape[0]):
        row = scores[s, ks[s]:ke[s]]
        got = idx[s][idx[s] >= 0]
        assert len(set(got.tolist())) == len(got), f"row {s}: duplicate positions"
        assert len(got) == min(topk, len(row)), f"row {s}: {len(got)} entries"
        assert np.all(idx[s][len(got):] == -1), f"row {s}: -1 padding must follow the entries"
        if len(got) == 0:
            continue
        kth = np.sort(row)[::-1][len(got) - 1]
        assert row[got].min() >= kth - tol * max(1.0, abs(kth)), f"row {s}: a kept score is below the k-th"


def random_prefill(rng, S=24, N=700, H=4, D=32, dtype=np.float32):
    q = rng.standard_normal((S, H, D)).astype(dtype)
    k = rng.standard_normal((N, D)).astype(dtype)
    w = rng.standard_normal((S, H)).astype(np.float32)
    k_scale = rng.uniform(0.5, 1.5, N).astype(np.float32)
    ks = rng.integers(0, 50, S).astype(np.int32)
    ke = np.minimum(ks + rng.integers(1, N, S), N).astype(np.int32)
    return q, w, k, k_scale, ks, ke


def test_import_does_not_load_torch():
    code = "import sys, hilo; assert 'torch' not in sys.modules, 'torch was imported'; print(hilo.__version__)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_flat_prefill_matches_numpy_reference():
    rng = np.random.default_rng(1)
    q, w, k, k_scale, ks, ke = random_prefill(rng)
    out = np.full((q.shape[0], 64), 12345, dtype=np.int32)  # poisoned
    idx = hilo.hisa.flat_prefill(q, w, k, k_scale, ks, ke, topk=64, out=out)
    assert idx is out and not np.any(out == 12345)
    check_topk_rows(idx, scores_f64(q, w, k, k_scale), ks, ke, 64, tol=1e-5)


def test_hisa_equals_flat_when_every_block_fits():
    rng = np.random.default_rng(2)
    q, w, k, k_scale, ks, ke = random_prefill(rng, N=512)
    flat = hilo.hisa.flat_prefill(q, w, k, k_scale, ks, ke, topk=48, sorted=True)
    hisa = hilo.hisa.hisa_prefill(q, w, k, k_scale, ks, ke, topk=48, block=32, blocks_kept=16, sorted=True)
    np.testing.assert_array_equal(flat, hisa)


def test_fp8_as_ml_dtypes_or_uint8_bits_agree():
    d = hilo.hisa.synthetic_prefill(context=2048, queries=32, heads=16, dim=128, seed=3)
    assert d["q"].dtype == ml_dtypes.float8_e4m3fn
    args = (d["w"], d["k"], d["k_scale"], d["ks"], d["ke"])
    a = hilo.hisa.hisa_prefill(d["q"], *args, topk=256, block=64, blocks_kept=8)
    bits = (d["q"].view(np.uint8),) + (d["w"], d["k"].view(np.uint8), d["k_scale"], d["ks"], d["ke"])
    b = hilo.hisa.hisa_prefill(*bits, topk=256, block=64, blocks_kept=8)
    np.testing.assert_array_equal(a, b)
    idx, stats = hilo.hisa.hisa_prefill(d["q"], *args, topk=256, block=64, blocks_kept=8, return_stats=True)
    assert stats["mean_blocks_kept"] > 0


def test_decode_hisa_equals_flat_with_all_blocks_and_cache_matches_pool_keys():
    d = hilo.hisa.synthetic_decode(context=1000, batch=2, next_n=2, heads=16, dim=128, seed=4)
    args = (d["q"], d["w"], d["kv_cache"], d["block_table"], d["context_lens"])
    flat_pos, flat_slots = hilo.hisa.flat_decode(*args, topk=128, sorted=True, slots=True)
    cache = hilo.hisa.PooledKeyCache(head_dim=128, block=64)
    pos = hilo.hisa.hisa_decode(*args, cache, topk=128, blocks_kept=64, sorted=True)
    np.testing.assert_array_equal(flat_pos, pos)
    assert flat_slots.shape == flat_pos.shape and np.all((flat_slots >= 0) == (flat_pos >= 0))


def test_topk_ragged_matches_numpy():
    rng = np.random.default_rng(5)
    scores = rng.standard_normal((6, 300)).astype(np.float32)
    starts = np.array([0, 10, 100, 0, 250, 299], dtype=np.int32)
    ends = np.array([300, 20, 300, 5, 300, 300], dtype=np.int32)
    idx = hilo.hisa.topk(scores, 16, starts=starts, ends=ends, sorted=True)
    for r in range(6):
        row = scores[r, starts[r]:ends[r]]
        want = np.argsort(-row, kind="stable")[:16]
        got = idx[r][idx[r] >= 0]
        np.testing.assert_array_equal(got, want)


def test_pool_keys_means_blocks():
    rng = np.random.default_rng(6)
    k = rng.standard_normal((200, 128)).astype(np.float32)
    s = rng.uniform(0.5, 2, 200).astype(np.float32)
    codes, scale = hilo.hisa.pool_keys(k, s, block=64, format="f32")
    want = np.stack([(k[i:i + 64] * s[i:i + 64, None]).mean(0) for i in range(0, 200, 64)])
    np.testing.assert_allclose(codes, want, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(scale, 1.0)


@pytest.mark.parametrize("method,bits", [("lords", 4), ("lords", 3), ("blockwise", 4), ("blockwise", 2)])
def test_quantize_matmul_dequantize_and_files(tmp_path, method, bits):
    rng = np.random.default_rng(7)
    w = (rng.standard_normal((96, 256)) * 0.02).astype(np.float32)
    q, report = hilo.lords.quantize(w, method=method, bits=bits, block=64, steps=10)
    assert q.method == method and q.rows == 96 and q.cols == 256 and 0 < report["rel_error"] < 1
    deq = hilo.lords.dequantize(q)
    assert np.linalg.norm(deq - w) / np.linalg.norm(w) == pytest.approx(report["rel_error"], rel=1e-6)
    x = rng.standard_normal((5, 256)).astype(np.float32)
    y = hilo.lords.matmul(q, x, out=np.full((5, 96), np.nan, dtype=np.float32))
    np.testing.assert_allclose(y, x @ deq.T.astype(np.float64), rtol=1e-4, atol=1e-5)
    # Fields out, layer back in; packing round trip; file round trip.
    codes = hilo.lords.unpack_codes(q)
    np.testing.assert_array_equal(hilo.lords.pack_codes(codes, bits), q.qweight)
    fields = dict(scales=q.scales) if method == "blockwise" else dict(b=q.b, a=q.a)
    again = hilo.lords.from_arrays(method=method, codebook="nf", bits=bits, block=64, rows=96, cols=256,
                                   qweight=q.qweight, **fields)
    np.testing.assert_array_equal(hilo.lords.dequantize(again), deq)
    path = tmp_path / "layers.safetensors"
    hilo.lords.save(path, {"model.layers.0.mlp.up_proj": q}, extra={"norm.weight": np.ones(8, np.float32)})
    loaded = hilo.lords.load(path)
    np.testing.assert_array_equal(hilo.lords.dequantize(loaded["model.layers.0.mlp.up_proj"]), deq)
    summary = hilo.lords.inspect_checkpoint(str(path))
    assert summary["quantized_layers"] == 1


def test_bad_input_is_refused_naming_the_argument(tmp_path):
    rng = np.random.default_rng(8)
    q, w, k, k_scale, ks, ke = random_prefill(rng)
    with pytest.raises(hilo.HiloError, match="w"):
        hilo.hisa.flat_prefill(q, w[:3], k, k_scale, ks, ke, topk=8)
    with pytest.raises(hilo.HiloError, match="ks"):
        hilo.hisa.flat_prefill(q, w, k, k_scale, ks.astype(np.int64), ke, topk=8)
    with pytest.raises(hilo.HiloError, match="contiguous"):
        hilo.hisa.flat_prefill(q[:, :, ::2], w, k[:, ::2], k_scale, ks, ke, topk=8)
    bad = q.copy()
    bad[3, 1, 2] = np.nan
    with pytest.raises(hilo.HiloError, match="q"):
        hilo.hisa.flat_prefill(bad, w, k, k_scale, ks, ke, topk=8)
    with pytest.raises(hilo.HiloError, match="topk"):
        hilo.hisa.flat_prefill(q, w, k, k_scale, ks, ke, topk=0)
    with pytest.raises(hilo.HiloError, match="qweight"):
        hilo.lords.from_arrays(method="blockwise", codebook="nf", bits=4, block=64, rows=4, cols=64,
                               qweight=np.zeros((4, 31), np.uint8), scales=np.ones((4, 1), ml_dtypes.bfloat16))
    with pytest.raises(hilo.HiloError, match="scales"):
        hilo.lords.from_arrays(method="blockwise", codebook="nf", bits=4, block=64, rows=4, cols=64,
                               qweight=np.zeros((4, 32), np.uint8),
                               scales=np.full((4, 1), np.inf, ml_dtypes.bfloat16))
    wbad = np.ones((8, 64), np.float32)
    wbad[2, 3] = np.inf
    with pytest.raises(hilo.HiloError):
        hilo.lords.quantize(wbad, bits=4)
    truncated = tmp_path / "t.safetensors"
    q4, _ = hilo.lords.quantize(np.ones((8, 64), np.float32), method="blockwise")
    hilo.lords.save(truncated, {"l": q4})
    data = truncated.read_bytes()
    truncated.write_bytes(data[:-7])
    with pytest.raises(hilo.HiloError, match="t.safetensors"):
        hilo.lords.load(truncated)
    with pytest.raises(ValueError, match="device"):
        hilo.lords.quantize(np.ones((8, 64), np.float32), device="gpu")
    if not hilo.built_with_cuda():
        with pytest.raises(hilo.HiloError, match="without CUDA"):
            hilo.lords.to_device(q4)
    else:
        try:
            hilo.lords.to_device(q4)
        except hilo.HiloError as e:  # built with CUDA, no usable GPU here: a clear error, not a crash
            assert "CUDA" in str(e)
