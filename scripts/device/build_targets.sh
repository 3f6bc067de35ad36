#!/usr/bin/env bash
# Configures build-device with the carried dependencies (see build_and_test.sh) and builds the given targets; the
# logs stay under $OUT only when a step fails (the device tool returns at most 8 files). Sourced or run by the device scripts: scripts/device/build_targets.sh TARGET...
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
OUT=${OUT:-/tmp/hilo-out}
mkdir -p "$OUT"
deps=$PWD/.device-deps
cmake -S . -B build-device -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$deps/usr" -DHILO_FMT_HEADER_ONLY=ON \
  -DHILO_GTEST_SOURCE="$deps/usr/src/googletest" -DCMAKE_CUDA_ARCHITECTURES=90a \
  -DPython_EXECUTABLE="$(command -v python3)" > "$OUT/configure.log" 2>&1 ||
  { tail -30 "$OUT/configure.log"; exit 1; }
cmake --build build-device -j "$(nproc)" --target "$@" > "$OUT/build.log" 2>&1 ||
  { grep -E "error" -A3 "$OUT/build.log" | head -40; exit 1; }
rm -f "$OUT/configure.log" "$OUT/build.log"
