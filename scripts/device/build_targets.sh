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
  # xz (python's tarfile, so the device needs no xz tool) or gzip, whichever prebuild.sh left.
  if [ -f build-carry/bin.txz ]; then
    python3 -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])' build-carry/bin.txz \
      /tmp/hilo-prebuilt || { echo "PREBUILT=1: build-carry/bin.txz did not unpack"; exit 1; }
  else
    tar -xzf build-carry/bin.tgz -C /tmp/hilo-prebuilt || { echo "PREBUILT=1 but no build-carry/bin.txz (carry it)"; exit 1; }
  fi
  for target in "$@"; do
    [ -x "/tmp/hilo-prebuilt/bin/$target" ] || { echo "PREBUILT=1 but build-carry's binaries have no $target"; exit 1; }
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
