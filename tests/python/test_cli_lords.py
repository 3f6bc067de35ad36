"""`hilo quantize / dequantize / inspect` on a small Hugging Face checkpoint written by the `safetensors` package:
the JSON report, a bf16 checkpoint any tool loads, and clear errors that leave nothing behind."""
import json
import os
import signal
import subprocess

import ml_dtypes
import numpy as np
from safetensors.numpy import load_file, save_file

from conftest import run


def make_model(path, rows=64, cols=128, seed=0):
    """A 1-layer Llama-like checkpoint: two projections, an embedding and a norm, bf16 (f32 norm)."""
    rng = np.random.default_rng(seed)
    path.mkdir()
    (path / "config.json").write_text('{"model_type": "llama"}')
    tensors = {
        "model.embed_tokens.weight": rng.standard_normal((32, cols)).astype(ml_dtypes.bfloat16),
        "model.layers.0.self_attn.q_proj.weight": (0.02 * rng.standard_t(5, (rows, cols))).astype(ml_dtypes.bfloat16),
        "model.layers.0.mlp.down_proj.weight": (0.02 * rng.standard_t(5, (cols, rows))).astype(ml_dtypes.bfloat16),
        "model.norm.weight": np.ones(cols, dtype=np.float32),
    }
    save_file(tensors, str(path / "model.safetensors"), metadata={"format": "pt"})
    return tensors


def test_quantize_json_report_and_round_trip(hilo_bin, tmp_path):
    tensors = make_model(tmp_path / "in")
    for method in ["lords", "blockwise"]:
        out = tmp_path / f"q-{method}"
        report = json.loads(run(hilo_bin, "quantize", tmp_path / "in", "-o", out, "--method", method, "--bits", "3",
                                "--block", "32", "--steps", "20", "--json").stdout)
        assert {"tensors", "rel_error_mean", "bits_per_weight"} <= report.keys()
        names = sorted(t["name"] for t in report["tensors"])
        assert names == ["model.layers.0.mlp.down_proj.weight", "model.layers.0.self_attn.q_proj.weight"]
        for t in report["tensors"]:
            assert {"name", "rel_error", "bits_per_weight", "rank"} <= t.keys()
            assert 0 < t["rel_error"] < 0.5
            assert t["bits_per_weight"] <= 3.5
        assert (out / "config.json").read_text() == '{"model_type": "llama"}'

        info = json.loads(run(hilo_bin, "inspect", out, "--json").stdout)
        assert info["quantized_layers"] == 2
        assert abs(info["quantized_bits_per_weight"] - report["bits_per_weight"]) < 1e-9

        deq = tmp_path / f"d-{method}"
        run(hilo_bin, "dequantize", out, "-o", deq)
        plain = load_file(str(deq / "model.safetensors"))  # any tool can read it
        assert set(plain) == set(tensors)
        for name, ref in tensors.items():
            assert plain[name].shape == ref.shape and plain[name].dtype == ref.dtype, name
        np.testing.assert_array_equal(plain["model.embed_tokens.weight"], tensors["model.embed_tokens.weight"])
        for t in report["tensors"]:  # the reported error is the error of what was written
            w = tensors[t["name"]].astype(np.float64)
            d = plain[t["name"]].astype(np.float64)
            rel = np.linalg.norm(w - d) / np.linalg.norm(w)
            assert abs(rel - t["rel_error"]) < 0.01 * t["rel_error"] + 1e-3, (rel, t["rel_error"])


def test_table_output_and_help(hilo_bin, tmp_path):
    make_model(tmp_path / "in")
    text = run(hilo_bin, "quantize", tmp_path / "in", "-o", tmp_path / "q", "--steps", "5").stdout
    assert "rel_error" in text and "bits per weight" in text
    assert "lords nf4" in run(hilo_bin, "inspect", tmp_path / "q").stdout
    help_text = run(hilo_bin, "quantize", "--help").stdout
    for option in ["--method", "--bits", "--codebook", "--block", "--rank", "--steps", "--optimizer", "--include",
                   "--threads", "--json"]:
        assert option in help_text, option


def test_bad_input_is_refused_and_writes_nothing(hilo_bin, tmp_path):
    make_model(tmp_path / "in")
    out = tmp_path / "q"
    cases = [
        (["--block", "48"], "block = 48"),
        (["--block", "256"], "does not divide the input dimension"),
        (["--bits", "5"], "--bits"),
        (["--codebook", "fp4"], "--codebook"),
        (["--include", "norm"], "is 1-D"),
        (["--include", "nothing"], "no tensor"),
        (["--rank", "100"], "rank = 100"),
        (["--device", "cuda:x"], "--device 'cuda:x' is not cpu, cuda or cuda:N"),
        (["--device", "cuda:7"], "device = 7 does not exist"),
    ]
    for args, message in cases:
        result = run(hilo_bin, "quantize", tmp_path / "in", "-o", out, *args, check=False)
        assert result.returncode != 0, args
        assert message in result.stderr, (args, result.stderr)
        assert sorted(p.name for p in tmp_path.iterdir()) == ["in"], args
    result = run(hilo_bin, "quantize", tmp_path / "missing", "-o", out, check=False)
    assert result.returncode != 0 and "missing" in result.stderr
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{\"a\": 1}")
    result = run(hilo_bin, "quantize", tmp_path / "broken", "-o", out, check=False)
    assert result.returncode == 1 and "hilo: error" in result.stderr
    assert not out.exists()


def test_nan_weight_is_refused(hilo_bin, tmp_path):
    tensors = make_model(tmp_path / "in")
    w = tensors["model.layers.0.mlp.down_proj.weight"].copy()
    w[3, 4] = np.nan
    tensors["model.layers.0.mlp.down_proj.weight"] = w
    save_file(tensors, str(tmp_path / "in" / "model.safetensors"))
    result = run(hilo_bin, "quantize", tmp_path / "in", "-o", tmp_path / "q", "--method", "blockwise", check=False)
    assert result.returncode == 1 and "non-finite" in result.stderr and "down_proj" in result.stderr
    assert not (tmp_path / "q").exists()


def test_interrupt_leaves_no_output(hilo_bin, tmp_path):
    make_model(tmp_path / "in", rows=512, cols=1024)
    proc = subprocess.Popen([str(hilo_bin), "quantize", str(tmp_path / "in"), "-o", str(tmp_path / "q"),
                             "--steps", "100000", "--threads", "1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        proc.wait(timeout=1.5)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode != 0 and "interrupted" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in"]
