"""hilo's dtype conversions, bit for bit against ml_dtypes (and numpy for fp16), through a safetensors round trip.

fp8 e4m3 saturates in hilo (finite and infinite values beyond +-448 become +-448), so it is compared with
ml_dtypes on clip(x, -448, 448); NaN inputs must give a NaN code.
"""
import ml_dtypes
import numpy as np
import pytest

from conftest import read_raw, run, write_raw

E4M3 = ml_dtypes.float8_e4m3fn


def convert(st_convert, tmp_path, array, src_dtype, dst_dtype):
    src, dst = tmp_path / "in.safetensors", tmp_path / "out.safetensors"
    write_raw(src, {"x": (src_dtype, array.shape, array.tobytes())})
    run(st_convert, src, dst, dst_dtype)
    dtype, shape, data = read_raw(dst)[0]["x"]
    assert dtype == dst_dtype and shape == array.shape
    return data


def random_f32(count, seed):
    rng = np.random.default_rng(seed)
    parts = [
        rng.integers(0, 2**32, count // 2, dtype=np.uint64).astype(np.uint32).view(np.float32),  # every exponent
        (rng.standard_normal(count // 4) * rng.choice([1e-6, 1e-3, 1.0, 30.0, 500.0], count // 4)).astype(np.float32),
        rng.uniform(-480, 480, count // 8).astype(np.float32),  # fp8 range, including the saturation edge
    ]
    x = np.concatenate(parts)
    specials = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 448.0, 464.0, -464.0, 2**-9, 2**-10, 3 * 2**-10,
                         65504.0, 65520.0, 1.0625, 1.1875, 2**-126, 2**-149], dtype=np.float32)
    return np.concatenate([x, specials]).astype(np.float32)


def test_all_fp8_codes_widen_exactly(st_convert, tmp_path):
    codes = np.arange(256, dtype=np.uint8)
    got = np.frombuffer(convert(st_convert, tmp_path, codes, "F8_E4M3", "F32"), dtype=np.float32)
    want = codes.view(E4M3).astype(np.float32)
    assert np.array_equal(np.isnan(got), np.isnan(want))
    ok = ~np.isnan(want)
    assert np.array_equal(got[ok].view(np.uint32), want[ok].view(np.uint32))


@pytest.mark.parametrize("name", ["BF16", "F16"])
def test_all_16bit_codes_widen_exactly(st_convert, tmp_path, name):
    codes = np.arange(2**16, dtype=np.uint16)
    got = np.frombuffer(convert(st_convert, tmp_path, codes, name, "F32"), dtype=np.float32)
    want = codes.view(ml_dtypes.bfloat16 if name == "BF16" else np.float16).astype(np.float32)
    assert np.array_equal(np.isnan(got), np.isnan(want))
    ok = ~np.isnan(want)
    assert np.array_equal(got[ok].view(np.uint32), want[ok].view(np.uint32))


@pytest.mark.parametrize("seed", [0, 1])
def test_random_f32_narrow_bit_exact(st_convert, tmp_path, seed):
    x = random_f32(3_000_000, seed)
    nan = np.isnan(x)

    got = np.frombuffer(convert(st_convert, tmp_path, x, "F32", "BF16"), dtype=np.uint16)
    want = x.astype(ml_dtypes.bfloat16).view(np.uint16)
    assert np.array_equal(got[~nan], want[~nan])
    assert np.all((got[nan] & 0x7F80) == 0x7F80) and np.all(got[nan] & 0x7F)

    got = np.frombuffer(convert(st_convert, tmp_path, x, "F32", "F16"), dtype=np.uint16)
    with np.errstate(over="ignore"):
        want = x.astype(np.float16).view(np.uint16)
    assert np.array_equal(got[~nan], want[~nan])
    assert np.all((got[nan] & 0x7C00) == 0x7C00) and np.all(got[nan] & 0x3FF)

    got = np.frombuffer(convert(st_convert, tmp_path, x, "F32", "F8_E4M3"), dtype=np.uint8)
    want = np.clip(x, -448, 448).astype(E4M3).view(np.uint8)
    assert np.array_equal(got[~nan], want[~nan])
    assert np.all((got[nan] & 0x7F) == 0x7F)
