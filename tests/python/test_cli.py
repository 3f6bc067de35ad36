"""The `hilo` command line: help, JSON output, --input/--output round trips, and clear errors on bad arguments."""
import json

import numpy as np
from safetensors.numpy import load_file

from conftest import run

SMALL = ["--context", "3000", "--queries", "24", "--heads", "8", "--dim", "32", "--topk", "128", "--block", "32",
         "--blocks", "8", "--threads", "2"]


def test_help(hilo_bin):
    assert "hisa" in run(hilo_bin, "--help").stdout
    text = run(hilo_bin, "hisa", "--help").stdout
    for option in ["--context", "--queries", "--heads", "--dim", "--topk", "--block", "--blocks", "--dtype",
                   "--threads", "--seed", "--mode", "--batch", "--json", "--input", "--output"]:
        assert option in text, option


def test_prefill_json(hilo_bin):
    result = json.loads(run(hilo_bin, "hisa", *SMALL, "--json").stdout)
    for key in ["flat_ms", "hisa_ms", "speedup", "iou_mean", "iou_min", "block_only_iou_mean", "needle_recall_flat",
                "needle_recall_hisa"]:
        assert key in result, key
    assert 0 < result["iou_min"] <= result["iou_mean"] <= 1
    assert result["needle_recall_flat"] == 1.0


def test_table_output_and_dtypes(hilo_bin):
    for dtype in ["fp8", "bf16", "f32"]:
        text = run(hilo_bin, "hisa", *SMALL, "--dtype", dtype).stdout
        assert "flat" in text and "hisa" in text and "block-only" in text and dtype in text


def test_decode_json(hilo_bin, tmp_path):
    out = tmp_path / "dec.safetensors"
    result = json.loads(run(hilo_bin, "hisa", "--mode", "decode", "--batch", "3", "--next-n", "2", *SMALL,
                            "--output", out, "--json").stdout)
    assert result["mode"] == "decode" and result["rows"] == 6
    idx = load_file(str(out))
    assert idx["flat_idx"].shape == (6, 128) and idx["hisa_slots"].dtype == np.int32


def test_saved_inputs_reproduce_the_same_indices(hilo_bin, tmp_path):
    inputs, first, second = tmp_path / "in.safetensors", tmp_path / "a.safetensors", tmp_path / "b.safetensors"
    run(hilo_bin, "hisa", *SMALL, "--save-inputs", inputs, "--output", first)
    common = ["--topk", "128", "--block", "32", "--blocks", "8"]
    run(hilo_bin, "hisa", "--input", inputs, *common, "--output", second)
    a, b = load_file(str(first)), load_file(str(second))
    assert a["flat_idx"].shape == (24, 128)
    assert np.array_equal(a["flat_idx"], b["flat_idx"]) and np.array_equal(a["hisa_idx"], b["hisa_idx"])


def test_bad_arguments_fail_with_a_message(hilo_bin, tmp_path):
    cases = [
        (["hisa", "--topk", "0"], "--topk"),
        (["hisa", *SMALL[:-4], "--blocks", "3"], "blocks_kept * block = 3 * 32"),
        (["hisa", "--dtype", "fp4"], "--dtype"),
        (["hisa", "--input", tmp_path / "missing.safetensors"], "--input"),
        (["hisa", "--input", __file__, "--context", "100"], "excludes"),
        (["hisa", "--context", "100", "--queries", "200"], "--queries 200 is larger than --context 100"),
        (["hisa", *SMALL, "--output", tmp_path / "no" / "dir" / "x.safetensors"], "temporary file"),
        (["frobnicate"], "subcommand"),
    ]
    for args, message in cases:
        result = run(hilo_bin, *args, check=False)
        assert result.returncode != 0, args
        assert message in result.stderr + result.stdout, (args, result.stderr)
    assert not (tmp_path / "no").exists()


def test_malformed_input_file(hilo_bin, tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all}")
    result = run(hilo_bin, "hisa", "--input", bad, check=False)
    assert result.returncode == 1 and "not valid JSON" in result.stderr
