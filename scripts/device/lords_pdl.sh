#!/usr/bin/env bash
# On the GPU machine: programmatic dependent launch for the batch-1 GEMVs (HILO_PDL) and the streaming floor, in one
# call. Builds; runs the LoRDS GPU tests (the back-to-back chain among them, also with HILO_PDL=0) and TESTS_EXTRA (a
# gtest filter); benchmarks NF4 B=64 at BATCHES (default 1,4) for both methods with PDL (the default) and without,
# each row with the streaming floor ("read us": a kernel that only reads the layer's bytes, same harness); cuBLAS
# bf16; compute-sanitizer memcheck and racecheck on the chain test; Nsight Compute detail for NCU_DETAIL shapes.
# Usage (device tool, carry [".device-deps"]): scripts/device/lords_pdl.sh (NO_CUBLAS=1, SANITIZERS="" skip parts).
# Results in $OUT: bench-pdl.json, bench-no-pdl.json, cublas-baseline.json, bench.log, ncu-*.txt (the device tool
# returns at most 8 files).
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/hilo-out}
mkdir -p "$OUT"
scripts/device/build_targets.sh hilo_tests bench_lords_cuda || exit 1
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv,noheader
tests="LordsCuda*:LordsGpuLayout*${TESTS_EXTRA:+:$TESTS_EXTRA}"
timeout 300 build-device/tests/hilo_tests --gtest_filter="$tests" > "$OUT/tests.log" 2>&1
rc=$?
echo "tests rc $rc"; grep -E "^\[  (PASSED|FAILED)|FAILED  \]|Failure|exception|Expected|Which|near|OK \] .*[0-9]{4,} ms" \
  "$OUT/tests.log" | head -30
HILO_PDL=0 timeout 100 build-device/tests/hilo_tests --gtest_filter="LordsCuda.BackToBack*" > "$OUT/tests-no-pdl.log" 2>&1
prc=$?
echo "chain test with HILO_PDL=0 rc $prc"; grep -E "^\[  (PASSED|FAILED)|Failure|exception" "$OUT/tests-no-pdl.log" | head -8
[ $prc = 0 ] || rc=$prc
bench=build-device/bench/bench_lords_cuda
batches=${BATCHES:-1,4}
HILO_LORDS_VERBOSE=1 timeout 200 $bench --bits 4 --block 64 --batches $batches --json "$OUT/bench-pdl.json" 2>&1 |
  tee "$OUT/bench.log"
echo "--- HILO_PDL=0" | tee -a "$OUT/bench.log"
HILO_PDL=0 timeout 200 $bench --bits 4 --block 64 --batches $batches --json "$OUT/bench-no-pdl.json" 2>&1 |
  grep -v "^lords_gemv" | tee -a "$OUT/bench.log"
if [ -z "${NO_CUBLAS:-}" ]; then
  timeout 120 python3 scripts/device/cublas_baseline.py "$OUT/cublas-baseline.json" > "$OUT/cublas.log" 2>&1
  grep -E "copy|\| [0-9]+x[0-9]+ \| (1|4) \|" "$OUT/cublas.log" | tee -a "$OUT/bench.log"
fi
for tool in ${SANITIZERS-memcheck racecheck}; do
  timeout ${SANITIZE_TIMEOUT:-150} compute-sanitizer --tool $tool --error-exitcode 9 build-device/tests/hilo_tests \
    --gtest_filter="LordsCuda.BackToBack*${SANITIZE_EXTRA:+:$SANITIZE_EXTRA}" > "$OUT/$tool.log" 2>&1
  echo "$tool rc=$? $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$OUT/$tool.log" | tail -1)" | tee -a "$OUT/bench.log"
done
rm -f "$OUT"/memcheck.log "$OUT"/racecheck.log "$OUT"/cublas.log
[ $rc = 0 ] && rm -f "$OUT"/tests.log "$OUT"/tests-no-pdl.log
for shape in ${NCU_DETAIL:-}; do  # full sections for the listed shapes (LoRDS, batch 1)
  timeout 90 ncu --kernel-name regex:'lords_gemv' --launch-skip 5 --launch-count 1 --section SpeedOfLight \
    --section WarpStateStats --section Occupancy --section LaunchStats --section SchedulerStats \
    --section MemoryWorkloadAnalysis $bench --bits 4 --block 64 --batches 1 --methods lords --shapes $shape \
    > "$OUT/ncu-$shape.txt" 2>&1
done
exit $rc
