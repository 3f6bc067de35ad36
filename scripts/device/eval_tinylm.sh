#!/usr/bin/env bash
# On the GPU machine's CPU (16 cores): builds the hilo CLI alone (no CUDA, tests or benchmarks) with the carried
# dependencies and runs scripts/eval_sweep.sh on the fixture copied to .device-fixture (carry both):
#   scripts/device/eval_tinylm.sh GROUP...     carry [".device-deps", ".device-fixture"]; results in $OUT
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/hilo-out}
mkdir -p "$OUT"
deps=$PWD/.device-deps
{ date -u +%Y-%m-%dT%H:%M:%SZ; lscpu | grep -E "Model name|^CPU\(s\)|Flags" | cut -c1-200; nproc; } > "$OUT/cpu.txt"
cmake -S . -B build-eval -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$deps/usr" -DHILO_FMT_HEADER_ONLY=ON \
  -DHILO_ENABLE_CUDA=OFF -DHILO_BUILD_TESTS=OFF -DHILO_BUILD_BENCH=OFF > "$OUT/configure.log" 2>&1 ||
  { tail -30 "$OUT/configure.log"; exit 1; }
cmake --build build-eval -j "$(nproc)" --target hilo_cli > "$OUT/build.log" 2>&1 || { grep -E "error" -A3 "$OUT/build.log" | head -40; exit 1; }
start=$(date +%s)
MODEL=.device-fixture HILO=build-eval/cli/hilo WORK=/tmp/eval-checkpoints scripts/eval_sweep.sh "$OUT" "$@"
rc=$?
echo "sweep $* took $(( $(date +%s) - start )) s" | tee -a "$OUT/cpu.txt"
exit $rc
