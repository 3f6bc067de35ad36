#!/usr/bin/env bash
# On the GPU machine: build the tests and the HISA GPU benchmark (carried deps, see build_and_test.sh), run the
# HISA GPU tests, compute-sanitizer memcheck and racecheck on them, then the benchmark. Logs and JSON go to $OUT.
# Usage (device tool, carry [".device-deps"]): scripts/device/hisa_gpu.sh [quick|full]
# (SANITIZERS="" skips compute-sanitizer, MEMCHECK_FILTER / RACECHECK_FILTER pick its tests, SANITIZER_TIMEOUT caps
# each tool's run in seconds (420); quick benchmarks fewer shapes; BENCH_ARGS picks the benchmark's arguments).
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/hilo-out}
mode=${1:-quick}
mkdir -p "$OUT"
scripts/device/build_targets.sh hilo_tests bench_hisa_cuda || exit 1
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader | tee "$OUT/gpu.txt"
build-device/tests/hilo_tests --gtest_filter='HisaCuda*' > "$OUT/test.log" 2>&1
rc=$?
grep -E "tie swaps|OK \]|FAILED|Failure|Expected|Which is|error" "$OUT/test.log" | head -40
for tool in ${SANITIZERS-memcheck racecheck}; do
  filter=${MEMCHECK_FILTER:-'HisaCuda.IdentitiesHoldExactly:HisaCuda.PairSortUnionGivesTheSameBits:HisaCuda.TopkRowsWithCrowdedBinsEqualCpu:HisaCuda.TopkShortRowsEqualCpu:HisaCuda.TopkTinyRowsEqualCpu:HisaCuda.DecodeMatchesCpuAndPooledCacheIsExact:HisaCuda.UncheckedDecodeIsolatesBadRequests:HisaCuda.BadInputGetsTheCpuMessages'}
  [ "$tool" = racecheck ] &&
    filter=${RACECHECK_FILTER:-'HisaCuda.IdentitiesHoldExactly:HisaCuda.PairSortUnionGivesTheSameBits:HisaCuda.TopkShortRowsEqualCpu:HisaCuda.TopkTinyRowsEqualCpu:HisaCuda.DecodeMatchesCpuAndPooledCacheIsExact'}
  timeout "${SANITIZER_TIMEOUT:-420}" compute-sanitizer --tool $tool --error-exitcode 9 build-device/tests/hilo_tests --gtest_filter="$filter" \
    > "$OUT/$tool.log" 2>&1
  echo "$tool rc=$? $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$OUT/$tool.log" | tail -1)"
done

bench_args=(--repeat 5 --json "$OUT/hisa-cuda.json")
[ "$mode" = "quick" ] && bench_args+=(--contexts 16384,65536,131072 --causal 16384 --batches 8,64 --decode-contexts 65536)
# BENCH_ARGS replaces the shape arguments, e.g. BENCH_ARGS="--parts prefill --contexts 65536 --causal 65536 --repeat 3".
[ -n "${BENCH_ARGS:-}" ] && read -r -a bench_args <<< "$BENCH_ARGS --json $OUT/hisa-cuda.json"
timeout 420 build-device/bench/bench_hisa_cuda "${bench_args[@]}" 2>&1 | tee "$OUT/bench.log"
exit $rc
