#!/usr/bin/env bash
# On the GPU machine: build (carried deps, see build_and_test.sh), run every test including the GPU ones,
# compute-sanitizer on the GPU tests, then the GPU benchmark. Logs and JSON go to $OUT.
# Usage (device tool, carry [".device-deps"]): scripts/device/hisa_gpu.sh [quick|full]
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/hilo-out}
mode=${1:-quick}
mkdir -p "$OUT"
scripts/device/build_and_test.sh > "$OUT/build_and_test.log" 2>&1
rc=$?
tail -8 "$OUT/build_and_test.log"
grep -E "HisaCuda|Failed|FAILED" "$OUT/ctest.log" | head -20
[ $rc -ne 0 ] && { grep -B2 -A30 "HisaCuda" build-device/Testing/Temporary/LastTest.log | grep -E "Failure|error|Expected|Which is|tie swaps" | head -40; }
build-device/tests/hilo_tests --gtest_filter='HisaCuda*' 2>&1 | grep -E "tie swaps|OK|FAILED" | head -20

if [ "$mode" = "full" ]; then
  timeout 300 compute-sanitizer --tool memcheck --error-exitcode 9 build-device/tests/hilo_tests \
    --gtest_filter='HisaCuda.IdentitiesHoldExactly:HisaCuda.TopkRowsEqualsCpu:HisaCuda.BadInputGetsTheCpuMessages' \
    > "$OUT/memcheck.log" 2>&1
  echo "memcheck rc=$? $(grep -E 'ERROR SUMMARY' "$OUT/memcheck.log" | tail -1)"
  timeout 300 compute-sanitizer --tool racecheck --error-exitcode 9 build-device/tests/hilo_tests \
    --gtest_filter='HisaCuda.IdentitiesHoldExactly' > "$OUT/racecheck.log" 2>&1
  echo "racecheck rc=$? $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$OUT/racecheck.log" | tail -1)"
fi

bench_args=(--repeat 5 --json "$OUT/hisa-cuda.json")
[ "$mode" = "quick" ] && bench_args+=(--contexts 16384,65536,131072 --causal 16384 --batches 8,64 --decode-contexts 65536)
timeout 420 build-device/bench/bench_hisa_cuda "${bench_args[@]}" 2>&1 | tee "$OUT/bench.log"
exit $rc
