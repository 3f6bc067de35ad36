#!/usr/bin/env bash
# On the GPU machine (PREBUILT=1, carry ["build-carry"], or carry [".device-deps"] to build): compute-sanitizer
# memcheck and racecheck on the LoRDS batch GEMM tests (FILTER, default LordsCuda.MatmulMatchesTheCpuOracle: batches
# 1-130, so the GEMVs, the small-batch GEMM and the wgmma GEMM), each capped at TIMEOUT seconds (240). Prints the
# summaries and, for racecheck, which kernels its hazards are in. Logs in $OUT/results.tgz.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/hilo-out}
work=/tmp/sanitize && rm -rf $work && mkdir -p $work
scripts/device/build_targets.sh hilo_tests || exit 1
filter=${FILTER:-LordsCuda.MatmulMatchesTheCpuOracle}
for tool in ${TOOLS:-memcheck racecheck}; do
  timeout "${TIMEOUT:-240}" compute-sanitizer --tool $tool --error-exitcode 9 build-device/tests/hilo_tests \
    --gtest_filter="$filter" > $work/$tool.log 2>&1
  echo "$tool rc=$? $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' $work/$tool.log | tail -1)"
  [ "$tool" = racecheck ] && grep -oE "in [a-zA-Z_:]*(gemm|gemv|sum)[a-zA-Z_]*" $work/racecheck.log | sort | uniq -c | head
done
tar -czf "$OUT/results.tgz" -C $work .
