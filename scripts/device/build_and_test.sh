#!/usr/bin/env bash
# On the GPU machine (no network): build with the dependencies carried in .device-deps (extracted Debian packages:
# fmt, nlohmann-json, CLI11 headers and CMake files, GoogleTest sources), run every test, record the environment.
# Usage (device tool): scripts/device/build_and_test.sh   with carry [".device-deps"]. Results go to $OUT.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/hilo-out}
mkdir -p "$OUT"
deps=$PWD/.device-deps
{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader
  nvcc --version | tail -2
  cmake --version | head -1
  c++ --version | head -1
  python3 -c 'import sys, numpy, ml_dtypes, safetensors, pytest; print("python", sys.version.split()[0], "numpy", numpy.__version__, "ml_dtypes", ml_dtypes.__version__, "safetensors", safetensors.__version__)'
  nproc
} > "$OUT/environment.txt" 2>&1
cat "$OUT/environment.txt"

cmake -S . -B build-device -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$deps/usr" -DHILO_FMT_HEADER_ONLY=ON \
  -DHILO_GTEST_SOURCE="$deps/usr/src/googletest" -DCMAKE_CUDA_ARCHITECTURES=90a > "$OUT/configure.log" 2>&1 ||
  { tail -30 "$OUT/configure.log"; exit 1; }
cmake --build build-device -j "$(nproc)" > "$OUT/build.log" 2>&1 || { grep -E "error" -A3 "$OUT/build.log" | head -40; exit 1; }
(cd build-device && ctest --output-on-failure -j 8 > "$OUT/ctest.log" 2>&1)
rc=$?
tail -15 "$OUT/ctest.log"
build-device/tests/hilo_tests --gtest_filter='Cuda*' 2>&1 | tail -5
exit $rc
