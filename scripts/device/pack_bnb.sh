#!/usr/bin/env bash
# On this (network) machine: a slim bitsandbytes for the GPU machine, which has torch but no network.
# bitsandbytes' wheel (43 MB) carries a library for every CUDA and ROCm version; the device runs torch for CUDA 13.0,
# so build-carry/bnb.txz keeps the Python package and libbitsandbytes_cuda130.so only (about 2 MB packed).
# scripts/device/bnb_baseline.py unpacks it there. BNB_VERSION (0.50.2) picks the release.
set -euo pipefail
cd "$(dirname "$0")/../.."
version=${BNB_VERSION:-0.50.2}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download -q --no-deps "bitsandbytes==$version" -d "$tmp"
mkdir "$tmp/site"
python3 - "$tmp" <<'PY'
import glob, sys, zipfile
tmp = sys.argv[1]
wheel = glob.glob(f"{tmp}/bitsandbytes-*.whl")[0]
with zipfile.ZipFile(wheel) as z:
    keep = [n for n in z.namelist()
            if not n.endswith(".so") or n.endswith("libbitsandbytes_cuda130.so")]
    z.extractall(f"{tmp}/site", keep)
PY
mkdir -p build-carry
XZ_OPT=-9 tar -cJf build-carry/bnb.txz.tmp -C "$tmp/site" . && mv build-carry/bnb.txz.tmp build-carry/bnb.txz
echo "build-carry/bnb.txz: bitsandbytes $version, $(du -h build-carry/bnb.txz | cut -f1)"
