"""Shared fixtures: where the built binaries are, and a minimal safetensors writer/reader for dtypes that the
`safetensors` package cannot load into numpy (fp8)."""
import json
import os
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]


def pytest_configure(config):
    config.addinivalue_line("markers", "heavy: long numeric check, skipped where HILO_SKIP_HEAVY is set (the "
                            "sanitizer build, where the smaller tests cover the same code paths)")


def pytest_collection_modifyitems(config, items):
    if os.environ.get("HILO_SKIP_HEAVY"):
        skip = pytest.mark.skip(reason="long numeric check (HILO_SKIP_HEAVY)")
        for item in items:
            if "heavy" in item.keywords:
                item.add_marker(skip)


def build_dir() -> Path:
    return Path(os.environ.get("HILO_BUILD_DIR", ROOT / "build"))


@pytest.fixture(scope="session")
def hilo_bin() -> Path:
    path = build_dir() / "cli" / "hilo"
    if not path.exists():
        pytest.fail(f"{path} is not built (set HILO_BUILD_DIR)")
    return path


@pytest.fixture(scope="session")
def st_convert() -> Path:
    path = build_dir() / "tests" / "st_convert"
    if not path.exists():
        pytest.fail(f"{path} is not built (set HILO_BUILD_DIR)")
    return path


def run(*args, check=True):
    result = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=600)
    if check and result.returncode != 0:
        raise AssertionError(f"{args} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def write_raw(path, tensors):
    """tensors: {name: (dtype_name, shape, bytes)} written as a safetensors file (no padding rules assumed)."""
    header, offset, blobs = {}, 0, []
    for name, (dtype, shape, data) in tensors.items():
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    text = json.dumps(header).encode()
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def read_raw(path):
    """Returns ({name: (dtype_name, shape, bytes)}, metadata, header_length)."""
    blob = Path(path).read_bytes()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8 : 8 + n])
    meta = header.pop("__metadata__", {})
    out = {}
    for name, spec in header.items():
        b, e = spec["data_offsets"]
        out[name] = (spec["dtype"], tuple(spec["shape"]), blob[8 + n + b : 8 + n + e])
    return out, meta, n
