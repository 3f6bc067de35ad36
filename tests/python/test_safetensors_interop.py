"""Files written by the `safetensors` package are read by hilo and the reverse; bad files are refused cleanly."""
import ml_dtypes
import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file, save_file

from conftest import read_raw, run


def sample_tensors():
    rng = np.random.default_rng(3)
    return {
        "f32": rng.standard_normal((3, 5)).astype(np.float32),
        "f16": rng.standard_normal(7).astype(np.float16),
        "bf16": rng.standard_normal((2, 9)).astype(ml_dtypes.bfloat16),
        "f64": rng.standard_normal(4),
        "i32": rng.integers(-100, 100, (4, 4), dtype=np.int32),
        "i64": rng.integers(-100, 100, 3, dtype=np.int64),
        "u8": rng.integers(0, 255, 11, dtype=np.uint8),
        "empty": np.zeros((0, 3), dtype=np.float32),
        "model.layers.0.self_attn.q_proj.weight": rng.standard_normal((4, 8)).astype(np.float32),
    }


def test_python_written_file_round_trips_through_hilo(st_convert, tmp_path):
    tensors = sample_tensors()
    src, dst = tmp_path / "py.safetensors", tmp_path / "hilo.safetensors"
    save_file(tensors, str(src), metadata={"format": "pt", "note": "from python"})
    run(st_convert, src, dst)  # hilo reads, then writes
    back = load_file(str(dst))  # the reference reader accepts hilo's file
    assert back.keys() == tensors.keys()
    for name, value in tensors.items():
        assert back[name].dtype == value.dtype and back[name].shape == value.shape
        assert np.array_equal(back[name].view(np.uint8), value.view(np.uint8)), name
    with safe_open(str(dst), framework="numpy") as f:
        assert f.metadata() == {"format": "pt", "note": "from python"}
    _, _, header_len = read_raw(dst)
    assert header_len % 8 == 0


def test_hilo_converts_python_bf16_to_f32(st_convert, tmp_path):
    x = np.random.default_rng(4).standard_normal(1000).astype(ml_dtypes.bfloat16)
    src, dst = tmp_path / "a.safetensors", tmp_path / "b.safetensors"
    save_file({"x": x}, str(src))
    run(st_convert, src, dst, "F32")
    assert np.array_equal(load_file(str(dst))["x"], x.astype(np.float32))


def test_truncated_and_garbage_files_are_refused(st_convert, tmp_path):
    src = tmp_path / "ok.safetensors"
    save_file({"x": np.arange(100, dtype=np.float32)}, str(src))
    blob = src.read_bytes()
    for cut, expect in [(4, "too small"), (30, "runs past the end"), (len(blob) - 3, "truncated file")]:
        bad = tmp_path / "bad.safetensors"
        bad.write_bytes(blob[:cut])
        out = tmp_path / "never.safetensors"
        result = run(st_convert, bad, out, check=False)
        assert result.returncode == 1 and expect in result.stderr, result.stderr
        assert not out.exists()
