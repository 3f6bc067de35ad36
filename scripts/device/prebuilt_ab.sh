#!/usr/bin/env bash
# On the GPU machine, with prebuilt binaries (carry ["build-carry"]): the LoRDS GPU tests of the new build, then the
# LoRDS benchmark of a base build (build-carry/base_bench_lords_cuda.gz, made by scripts/device/prebuild_base.sh) and of
# the new one, alternated ROUNDS times (default 2) in the same call, and cuBLAS bf16 on the same batches. Results in
# $OUT/results.tgz. BENCH_ARGS: the benchmark's arguments (default "--bits 4 --block 64 --batches 16,32");
# TESTS_FILTER (default the LoRDS GPU and layout tests; "-" skips them); CUBLAS_BATCHES ("" skips cuBLAS); NEW_ENV
# (e.g. "HILO_GEMM_WORKSPACE=1"): the tests run a second time with it, and each round times the new build with it too
# (env-N.json).
# Usage: PREBUILT=1 [BENCH_ARGS=...] scripts/device/prebuilt_ab.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/hilo-out}
work=/tmp/ab && rm -rf $work && mkdir -p $work
scripts/device/build_targets.sh hilo_tests bench_lords_cuda || exit 1
gunzip -c build-carry/base_bench_lords_cuda.gz > /tmp/base_bench_lords_cuda && chmod +x /tmp/base_bench_lords_cuda ||
  { echo "no build-carry/base_bench_lords_cuda.gz"; exit 1; }
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv,noheader | tee $work/gpu.txt
echo "new: $(cat build-carry/REVISION), base: $(cat build-carry/BASE_REVISION 2>/dev/null || echo unknown)" | tee -a $work/gpu.txt
rc=0
if [ "${TESTS_FILTER:-}" != "-" ]; then
  timeout "${TESTS_TIMEOUT:-300}" build-device/tests/hilo_tests --gtest_filter="${TESTS_FILTER:-LordsCuda*:LordsGpuLayout*}" > $work/tests.log 2>&1
  rc=$?
  echo "tests rc=$rc: $(grep -cE '^\[       OK' $work/tests.log) ok"
  grep -E "FAILED|Failure|Expected|Which" $work/tests.log | head -20
  if [ -n "${NEW_ENV:-}" ]; then
    env $NEW_ENV timeout "${TESTS_TIMEOUT:-300}" build-device/tests/hilo_tests \
      --gtest_filter="${TESTS_FILTER:-LordsCuda*:LordsGpuLayout*}" > $work/tests-env.log 2>&1
    e=$?
    [ $e -ne 0 ] && rc=$e
    echo "tests with $NEW_ENV rc=$e: $(grep -cE '^\[       OK' $work/tests-env.log) ok"
    grep -E "FAILED|Failure|Expected|Which" $work/tests-env.log | head -20
  fi
fi
read -r -a args <<< "${BENCH_ARGS:---bits 4 --block 64 --batches 16,32}"
for round in $(seq 1 "${ROUNDS:-2}"); do
  echo "=== round $round: base"
  timeout 200 /tmp/base_bench_lords_cuda "${args[@]}" --json $work/base-$round.json 2>&1 | tail -n +2
  echo "=== round $round: new"
  timeout 200 build-device/bench/bench_lords_cuda "${args[@]}" --json $work/new-$round.json 2>&1 | tail -n +2
  if [ -n "${NEW_ENV:-}" ]; then
    echo "=== round $round: new with $NEW_ENV"
    env $NEW_ENV timeout 200 build-device/bench/bench_lords_cuda "${args[@]}" --json $work/env-$round.json 2>&1 | tail -n +2
  fi
done
if [ -n "${CUBLAS_BATCHES-16,32}" ]; then
  HILO_CUBLAS_BATCHES=${CUBLAS_BATCHES-16,32} timeout 120 python3 scripts/device/cublas_baseline.py $work/cublas.json > $work/cublas.log 2>&1
  tail -12 $work/cublas.log
fi
tar -czf "$OUT/results.tgz" -C $work .
exit $rc
