#!/usr/bin/env bash
# On the GPU machine, for a call with little device time left: the most important results first, each written to
# $OUT as soon as it exists, so that a call cut off at its limit still returns what ran. Prebuilt binaries
# (PREBUILT=1, carry ["build-carry"]; scripts/device/prebuild.sh hilo_tests bench_lords_cuda).
# Order: FIRST (a gtest filter: the new kernel's tests), one timing round of LORDS_ARGS as built and with each of
# NEW_ENV's variants, cuBLAS bf16 at CUBLAS_BATCHES, compute-sanitizer memcheck on FIRST, the TESTS filter, then a
# second timing round. At the end every file is packed into $OUT/quick.tgz (the device tool returns at most 8 files:
# a call that ran to the end returns them all; one cut off returns the loose files written so far). Tables:
# scripts/lords_ab_table.py DIR (files as lords_profile_call.sh names them).
set -uo pipefail
cd "$(dirname "$0")/../.."
out=${OUT:-/tmp/hilo-out} && mkdir -p "$out"
scripts/device/build_targets.sh hilo_tests bench_lords_cuda > /dev/null || exit 1
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader | tee "$out/gpu.txt"
tests=build-device/tests/hilo_tests bench=build-device/bench/bench_lords_cuda
read -r -a lords_args <<< "${LORDS_ARGS:---bits 4 --block 64 --batches 4,16,32 --methods lords}"
timing_round() {
  timeout 60 $bench "${lords_args[@]}" --json "$out/new-$1.json" > /dev/null 2>&1
  local v=0
  for variant in ${NEW_ENV:-}; do
    v=$((v + 1))
    env ${variant//,/ } timeout 60 $bench "${lords_args[@]}" --json "$out/env$v-$1.json" > /dev/null 2>&1
  done
  echo "timing round $1 done"
}
timeout 90 $tests --gtest_filter="${FIRST:-LordsCuda.ScaleOnWgmma*}" > "$out/first.log" 2>&1
echo "first tests rc=$? $(grep -cE '^\[       OK' "$out/first.log") ok"
timing_round 1
if [ -n "${CUBLAS_BATCHES:-}" ]; then
  HILO_CUBLAS_BATCHES=$CUBLAS_BATCHES timeout 60 python3 scripts/device/cublas_baseline.py "$out/cublas.json" \
    > "$out/cublas.log" 2>&1
  echo "cublas rc=$?"
fi
timeout 120 compute-sanitizer --tool memcheck $tests --gtest_filter="${FIRST:-LordsCuda.ScaleOnWgmma*}" \
  > "$out/memcheck.log" 2>&1
echo "memcheck rc=$? $(grep -E 'ERROR SUMMARY' "$out/memcheck.log" | tail -1)"
timeout 200 $tests --gtest_filter="${TESTS:-LordsCuda*:LordsGpuLayout*}" > "$out/tests.log" 2>&1
echo "tests rc=$? $(grep -cE '^\[       OK' "$out/tests.log") ok"
grep -E "FAILED|Failure" "$out/tests.log" | head -10
timing_round 2
(cd "$out" && tar -czf /tmp/quick.tgz --exclude=quick.tgz . && find . -maxdepth 1 -type f -delete && mv /tmp/quick.tgz .)
