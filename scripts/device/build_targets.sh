#!/usr/bin/env bash
# Configures build-device with the carried dependencies (see build_and_test.sh) and builds the given targets; the
# logs stay under $OUT only when a step fails (the device tool returns at most 8 files). Sourced or run by the device
# scripts: scripts/device/build_targets.sh TARGET... With PREBUILT=1 it copies prebuilt binaries instead
# (scripts/device/prebuild.sh, run on the development machine; carry ["build-carry"]).
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
OUT=${OUT:-/tmp/hilo-out}
mkdir -p "$OUT"
# PREBUILT=1: the binaries scripts/device/prebuild.sh left in build-carry/ (carried) instead of a build.
if [ "${PREBUILT:-0}" = 1 ]; then
  mkdir -p build-device/tests build-device/bench /tmp/hilo-prebuilt
  tar -xzf build-carry/bin.tgz -C /tmp/hilo-prebuilt || { echo "PREBUILT=1 but no build-carry/bin.tgz (carry it)"; exit 1; }
  for target in "$@"; do
    [ -x "/tmp/hilo-prebuilt/bin/$target" ] || { echo "PREBUILT=1 but build-carry/bin.tgz has no $target"; exit 1; }
    case $target in
      hilo_tests) cp "/tmp/hilo-prebuilt/bin/$target" build-device/tests/ ;;
      *) cp "/tmp/hilo-prebuilt/bin/$target" build-device/bench/ ;;
    esac
  done
  echo "prebuilt binaries of $(cat build-carry/REVISION 2>/dev/null || echo 'an unknown tree')"
  exit 0
fi
deps=$PWD/.device-deps
cmake -S . -B build-device -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$deps/usr" -DHILO_FMT_HEADER_ONLY=ON \
  -DHILO_GTEST_SOURCE="$deps/usr/src/googletest" -DCMAKE_CUDA_ARCHITECTURES=90a \
  -DPython_EXECUTABLE="$(command -v python3)" > "$OUT/configure.log" 2>&1 ||
  { tail -30 "$OUT/configure.log"; exit 1; }
cmake --build build-device -j "$(nproc)" --target "$@" > "$OUT/build.log" 2>&1 ||
  { grep -E "error" -A3 "$OUT/build.log" | head -40; exit 1; }
rm -f "$OUT/configure.log" "$OUT/build.log"
