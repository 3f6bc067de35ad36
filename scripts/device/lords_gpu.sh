#!/usr/bin/env bash
# On the GPU machine, issue 5 in one call: build (or, with PREBUILT=1 and carry ["build-carry"], unpack) the tests and
# the benchmark, run every LoRDS GPU test, compute-sanitizer memcheck on the test that reaches every kernel family
# (SANITIZE, a gtest filter; empty skips it), then the issue's benchmark (scripts/device/lords_bench_all.sh: NF4 and
# NF3 at B=64 and B=128, batches 1-1024, LoRDS and block-wise, cuBLAS bf16 in the same call, the tables in
# report.md). `lords_gpu.sh quick`: NF4 B=64 only. Usage (device tool): carry [".device-deps"] to build there, or
# `scripts/device/prebuild.sh hilo_tests bench_lords_cuda` here and carry ["build-carry"] with PREBUILT=1.
# Output: $OUT/results.tgz (the benchmark's JSON, report.md and logs) and $OUT/tests.tgz (test and sanitizer logs).
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/hilo-out}
mkdir -p "$OUT"
logs=/tmp/lords-gpu-logs && rm -rf $logs && mkdir -p $logs
trap 'tar -czf "$OUT/tests.tgz" -C $logs .' EXIT
scripts/device/build_targets.sh hilo_tests bench_lords_cuda || exit 1
timeout 300 build-device/tests/hilo_tests --gtest_filter='LordsCuda*:LordsGpuLayout*' > $logs/tests.log 2>&1
rc=$?
echo "tests rc=$rc: $(grep -cE '^\[       OK' $logs/tests.log) passed, $(grep -cE '^\[  FAILED  \] [A-Z]' $logs/tests.log) failed"
grep -E "FAILED|Failure|Expected|Which is" $logs/tests.log | head -20
filter=${SANITIZE-LordsCuda.EveryRankWidthAndActivationRange}
if [ -n "$filter" ]; then
  timeout 200 compute-sanitizer --tool memcheck --error-exitcode 9 build-device/tests/hilo_tests \
    --gtest_filter="$filter" > $logs/memcheck.log 2>&1
  mrc=$?
  echo "memcheck rc=$mrc $(grep -E 'ERROR SUMMARY' $logs/memcheck.log | tail -1)"
  [ $mrc = 0 ] || rc=1
fi
[ "${1:-}" = quick ] && export CONFIGS="4 64"
BUILT=1 scripts/device/lords_bench_all.sh || rc=1
exit $rc
