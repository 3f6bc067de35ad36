"""`hilo perplexity` and `hilo kld` against an independent numpy forward pass (tests/tools/llama_reference.py) on
small random Llama checkpoints (f32/bf16/f16 weights, grouped KV heads, head dims that are not multiples of 32,
tied and untied heads, RoPE default/linear/llama3), quantized checkpoints, a pinned slice of the real fixture, and
clear errors on bad input."""
import json
import math
import sys
from pathlib import Path

import ml_dtypes
import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from conftest import ROOT, run

sys.path.insert(0, str(ROOT / "tests" / "tools"))
import llama_reference  # noqa: E402

FIXTURE = ROOT.parent / "shared" / "fixtures" / "tinylm"
NP_DTYPES = {"f32": np.float32, "bf16": ml_dtypes.bfloat16, "f16": np.float16}


def make_llama(path, seed=0, dtype="f32", hidden=64, layers=2, heads=4, kv_heads=2, head_dim=24, inter=96, vocab=50,
               tie=False, rope=None):
    """A random Llama checkpoint; returns (config, f64 weights as stored)."""
    rng = np.random.default_rng(seed)
    path.mkdir()
    cfg = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": hidden,
           "num_hidden_layers": layers, "num_attention_heads": heads, "num_key_value_heads": kv_heads,
           "head_dim": head_dim, "intermediate_size": inter, "vocab_size": vocab, "rms_norm_eps": 1e-5,
           "hidden_act": "silu", "tie_word_embeddings": tie,
           "rope_parameters": rope or {"rope_type": "default", "rope_theta": 10000.0}}
    (path / "config.json").write_text(json.dumps(cfg))
    q, kv = heads * head_dim, kv_heads * head_dim
    shapes = {"model.embed_tokens.weight": (vocab, hidden), "model.norm.weight": (hidden,)}
    if not tie:
        shapes["lm_head.weight"] = (vocab, hidden)
    for i in range(layers):
        p = f"model.layers.{i}."
        shapes |= {p + "input_layernorm.weight": (hidden,), p + "post_attention_layernorm.weight": (hidden,),
                   p + "self_attn.q_proj.weight": (q, hidden), p + "self_attn.k_proj.weight": (kv, hidden),
                   p + "self_attn.v_proj.weight": (kv, hidden), p + "self_attn.o_proj.weight": (hidden, q),
                   p + "mlp.gate_proj.weight": (inter, hidden), p + "mlp.up_proj.weight": (inter, hidden),
                   p + "mlp.down_proj.weight": (hidden, inter)}
    tensors = {}
    for name, shape in shapes.items():
        if name.endswith("norm.weight"):
            v = 1 + 0.1 * rng.standard_normal(shape)
        else:
            v = rng.standard_normal(shape) / math.sqrt(shape[-1]) * (3 if "embed" in name or "lm_head" in name else 1)
        tensors[name] = v.astype(NP_DTYPES[dtype])
    save_file(tensors, str(path / "model.safetensors"), metadata={"format": "pt"})
    return cfg, {k: np.asarray(v, dtype=np.float64) for k, v in tensors.items()}


def write_tokens(path, tokens, dtype=np.int32):
    save_file({"tokens": np.asarray(tokens, dtype=dtype)}, str(path))
    return path


def perplexity(hilo_bin, model, tokens, *extra):
    return json.loads(run(hilo_bin, "perplexity", model, "--tokens", tokens, "--json", *extra).stdout)


@pytest.mark.parametrize("variant", [
    dict(dtype="f32"),
    dict(dtype="bf16", tie=True, heads=8, kv_heads=2, head_dim=32),
    dict(dtype="f16", head_dim=40, rope={"rope_type": "linear", "rope_theta": 500.0, "factor": 4.0}),
    dict(dtype="bf16", head_dim=16, rope={"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0,
                                          "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                          "original_max_position_embeddings": 64}),
])
def test_perplexity_matches_numpy_reference(hilo_bin, tmp_path, variant):
    cfg, w = make_llama(tmp_path / "m", seed=hash(json.dumps(variant, sort_keys=True)) % 1000, **variant)
    tokens = np.random.default_rng(1).integers(0, cfg["vocab_size"], 3 * 70 + 5)
    out = perplexity(hilo_bin, tmp_path / "m", write_tokens(tmp_path / "t.safetensors", tokens), "--ctx", "70")
    expected = llama_reference.mean_nll(cfg, w, tokens, 70)
    assert out["windows"] == 3 and out["tokens"] == 3 * 69
    assert out["mean_nll"] == pytest.approx(expected, rel=2e-6)
    assert out["ppl"] == pytest.approx(math.exp(expected), rel=2e-6)


def test_thread_count_does_not_change_results(hilo_bin, tmp_path):
    cfg, _ = make_llama(tmp_path / "m", dtype="bf16")
    tokens = write_tokens(tmp_path / "t.safetensors", np.arange(300) % cfg["vocab_size"])
    one = perplexity(hilo_bin, tmp_path / "m", tokens, "--ctx", "100", "--threads", "1")
    two = perplexity(hilo_bin, tmp_path / "m", tokens, "--ctx", "100", "--threads", "2")
    assert one["mean_nll"] == two["mean_nll"]


def test_quantized_checkpoint_runs_through_packed_layers(hilo_bin, tmp_path):
    """A quantized checkpoint evaluates like its dequantised copy (which rounds W^ to bf16, hence the tolerance),
    and kld reports both perplexities of the pair."""
    make_llama(tmp_path / "m", dtype="bf16", hidden=128, head_dim=32, inter=256, vocab=64)
    tokens = write_tokens(tmp_path / "t.safetensors", np.random.default_rng(2).integers(0, 64, 400))
    for method in ["blockwise", "lords"]:
        q = tmp_path / f"q-{method}"
        run(hilo_bin, "quantize", tmp_path / "m", "-o", q, "--method", method, "--bits", "4", "--block", "32",
            "--steps", "30")
        run(hilo_bin, "dequantize", q, "-o", tmp_path / f"d-{method}")
        pq = perplexity(hilo_bin, q, tokens, "--ctx", "128")
        pd = perplexity(hilo_bin, tmp_path / f"d-{method}", tokens, "--ctx", "128")
        assert pq["linear_format"].startswith(method)
        assert pq["mean_nll"] == pytest.approx(pd["mean_nll"], rel=2e-3)
        k = json.loads(run(hilo_bin, "kld", tmp_path / "m", q, "--tokens", tokens, "--ctx", "128", "--json").stdout)
        base = perplexity(hilo_bin, tmp_path / "m", tokens, "--ctx", "128")
        assert k["base_ppl"] == pytest.approx(base["ppl"], rel=1e-12)
        assert k["quant_ppl"] == pytest.approx(pq["ppl"], rel=1e-12)
        assert 0 < k["kld_mean"] and k["kld_median"] <= k["kld_p99"] <= k["kld_max"]
        assert 0 < k["top1_agreement"] <= 1
    both = json.loads(run(hilo_bin, "kld", tmp_path / "m", tmp_path / "q-blockwise", tmp_path / "q-lords", "--tokens",
                          tokens, "--ctx", "128", "--json").stdout)
    assert [b["quant_ppl"] for b in both] == [
        perplexity(hilo_bin, tmp_path / f"q-{m}", tokens, "--ctx", "128")["ppl"] for m in ["blockwise", "lords"]]


def test_kld_of_a_model_with_itself_is_zero(hilo_bin, tmp_path):
    make_llama(tmp_path / "m")
    tokens = write_tokens(tmp_path / "t.safetensors", np.arange(200) % 50, dtype=np.int64)
    k = json.loads(run(hilo_bin, "kld", tmp_path / "m", tmp_path / "m", "--tokens", tokens, "--ctx", "64",
                       "--json").stdout)
    assert k["kld_mean"] == 0 and k["kld_max"] == 0 and k["top1_agreement"] == 1
    assert k["base_ppl"] == k["quant_ppl"] and k["windows"] == 3 and k["tokens"] == 3 * 63


@pytest.mark.heavy
@pytest.mark.skipif(not (FIXTURE / "config.json").exists(), reason="no fixture")
def test_fixture_slice_pinned(hilo_bin):
    """The first 4 windows of the fixture's validation tokens (the CI slice; the full set is in
    docs/results/eval-tinylm.md). Window 0 agrees with llama_reference.py to 1e-8 (4.1583501)."""
    out = perplexity(hilo_bin, FIXTURE, FIXTURE / "validation_tokens.safetensors", "--max-windows", "4")
    assert out["windows"] == 4 and out["tokens"] == 4 * 511
    assert out["ppl"] == pytest.approx(65.516218, rel=1e-6)


def expect_error(hilo_bin, *args, needle):
    r = run(hilo_bin, *args, check=False)
    assert r.returncode == 1, r.stderr
    assert needle in r.stderr, r.stderr


def test_bad_input_is_refused_by_name(hilo_bin, tmp_path):
    cfg, _ = make_llama(tmp_path / "m")
    good = write_tokens(tmp_path / "t.safetensors", np.arange(100) % 50)
    expect_error(hilo_bin, "perplexity", tmp_path / "m", "--tokens", write_tokens(tmp_path / "big.safetensors",
                 [1, 2, 50, 3]), "--ctx", "2", needle="outside the vocabulary")
    expect_error(hilo_bin, "perplexity", tmp_path / "m", "--tokens", good, "--ctx", "101", needle="do not fill")
    save_file({"ids": np.arange(10, dtype=np.int32)}, str(tmp_path / "noname.safetensors"))
    expect_error(hilo_bin, "perplexity", tmp_path / "m", "--tokens", tmp_path / "noname.safetensors",
                 needle="no tensor named 'tokens'")
    save_file({"tokens": np.ones(10, dtype=np.float32)}, str(tmp_path / "float.safetensors"))
    expect_error(hilo_bin, "perplexity", tmp_path / "m", "--tokens", tmp_path / "float.safetensors",
                 needle="integer type")
    (tmp_path / "trunc.safetensors").write_bytes(good.read_bytes()[:-7])
    expect_error(hilo_bin, "perplexity", tmp_path / "m", "--tokens", tmp_path / "trunc.safetensors", needle="trunc")
    for key, value, needle in [("model_type", "mistral", "model_type"), ("attention_bias", True, "attention_bias"),
                               ("hidden_act", "gelu", "hidden_act"), ("num_key_value_heads", 3, "num_key_value_heads"),
                               ("rope_parameters", {"rope_type": "yarn", "factor": 2.0}, "yarn")]:
        bad = dict(cfg, **{key: value})
        (tmp_path / "m" / "config.json").write_text(json.dumps(bad))
        expect_error(hilo_bin, "perplexity", tmp_path / "m", "--tokens", good, "--ctx", "10", needle=needle)
    (tmp_path / "m" / "config.json").write_text(json.dumps(dict(cfg, hidden_size=80)))
    expect_error(hilo_bin, "perplexity", tmp_path / "m", "--tokens", good, "--ctx", "10",
                 needle="model.embed_tokens.weight")
    (tmp_path / "m" / "config.json").write_text(json.dumps(cfg))
    ok_bytes = (tmp_path / "m" / "model.safetensors").read_bytes()
    tensors = load_file(str(tmp_path / "m" / "model.safetensors"))
    tensors["model.layers.1.mlp.up_proj.weight"][3, 5] = np.nan
    save_file(tensors, str(tmp_path / "m" / "model.safetensors"))
    expect_error(hilo_bin, "perplexity", tmp_path / "m", "--tokens", good, "--ctx", "10",
                 needle="'model.layers.1.mlp.up_proj.weight' holds a non-finite value at flat index 197")
    (tmp_path / "m" / "model.safetensors").write_bytes(ok_bytes)
    other, _ = make_llama(tmp_path / "v", vocab=40)
    expect_error(hilo_bin, "kld", tmp_path / "m", tmp_path / "v", "--tokens", good, "--ctx", "10",
                 needle="vocabularies differ")
    (tmp_path / "m" / "model.safetensors").write_bytes((tmp_path / "m" / "model.safetensors").read_bytes()[:-100])
    expect_error(hilo_bin, "perplexity", tmp_path / "m", "--tokens", good, "--ctx", "10", needle="model.safetensors")


def test_calibrated_quantization(hilo_bin, tmp_path):
    """--calibration weights LoRDS' error by each input channel's mean squared activation: the result differs from
    the plain refinement, is deterministic, and block-wise refuses it."""
    make_llama(tmp_path / "m", dtype="bf16", hidden=128, head_dim=32, inter=256, vocab=64)
    tokens = write_tokens(tmp_path / "t.safetensors", np.random.default_rng(3).integers(0, 64, 600))
    common = ["--method", "lords", "--bits", "3", "--block", "32", "--steps", "40", "--json"]
    plain = json.loads(run(hilo_bin, "quantize", tmp_path / "m", "-o", tmp_path / "p", *common).stdout)
    cal = [json.loads(run(hilo_bin, "quantize", tmp_path / "m", "-o", tmp_path / f"c{i}", *common, "--calibration",
                          tokens, "--calibration-windows", "2", "--calibration-ctx", "100", "--calibration-skip", "1",
                          "--threads", str(i + 1)).stdout) for i in range(2)]
    assert [t["rel_error"] for t in cal[0]["tensors"]] == [t["rel_error"] for t in cal[1]["tensors"]]
    assert [t["rel_error"] for t in cal[0]["tensors"]] != [t["rel_error"] for t in plain["tensors"]]
    assert (tmp_path / "c0" / "model.safetensors").read_bytes() == (tmp_path / "c1" / "model.safetensors").read_bytes()
    expect_error(hilo_bin, "quantize", tmp_path / "m", "-o", tmp_path / "b", "--method", "blockwise", "--calibration",
                 tokens, needle="--calibration applies to --method lords")
    expect_error(hilo_bin, "quantize", tmp_path / "m", "-o", tmp_path / "b", "--calibration", tokens,
                 "--calibration-skip", "9", needle="no window")
    assert not (tmp_path / "b").exists()
