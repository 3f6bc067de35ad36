#!/usr/bin/env bash
# On the GPU machine: the row-owning block-wise GEMV (src/lords/cuda/row_gemv.cu) against the cluster GEMV it
# replaces for batches 1..8, in one call. Builds; runs the LoRDS GPU tests (and TESTS_EXTRA, a gtest filter, e.g.
# the HISA GPU tests) and compute-sanitizer memcheck/racecheck on the row GEMV's test; benchmarks NF4 B=64 at
# batches 1, 4, 8 with the row GEMV (default) and with the cluster GEMV (HILO_GEMV_ROWS=0); 3-bit and B=128 at
# batches 1 and 8; cuBLAS bf16 in the same run; Nsight Compute's kernel durations and DRAM throughput at batch 1.
# Usage (device tool, carry [".device-deps"]): scripts/device/lords_rows.sh (NO_SWEEP=1, NO_CUBLAS=1, NO_NCU=1,
# SANITIZERS="" skip parts). Results in $OUT: rows-*.json, cublas-baseline.json, logs.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/hilo-out}
mkdir -p "$OUT"
scripts/device/build_targets.sh hilo_tests bench_lords_cuda || exit 1
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv,noheader
timeout 300 build-device/tests/hilo_tests --gtest_filter="LordsCuda*:LordsGpuLayout*${TESTS_EXTRA:+:$TESTS_EXTRA}" \
  > "$OUT/tests.log" 2>&1
rc=$?
echo "tests rc $rc"; grep -E "^\[  (PASSED|FAILED)|FAILED  \]|Failure|Expected|Which|near" "$OUT/tests.log" | head -30
bench=build-device/bench/bench_lords_cuda
b="--bits 4 --block 64"
timeout 120 $bench $b --batches 1,4,8 --json "$OUT/rows-nf4-b64.json" 2>&1 | tee "$OUT/bench.log"
HILO_GEMV_ROWS=0 timeout 120 $bench $b --batches 1,4,8 --methods blockwise --json "$OUT/rows-nf4-b64-cluster.json" \
  2>&1 | tee -a "$OUT/bench.log"
if [ -z "${NO_SWEEP:-}" ]; then  # 3-bit codes, B=128 blocks
  timeout 90 $bench --bits 3 --block 64 --batches 1,8 --methods blockwise 2>&1 | tail -8 | tee -a "$OUT/bench.log"
  timeout 90 $bench --bits 4 --block 128 --batches 1,8 --methods blockwise 2>&1 | tail -8 | tee -a "$OUT/bench.log"
fi
if [ -z "${NO_CUBLAS:-}" ]; then
  timeout 120 python3 scripts/device/cublas_baseline.py "$OUT/cublas-baseline.json" > "$OUT/cublas.log" 2>&1
  grep -E "copy|\| [0-9]+x[0-9]+ \| (1|4|16) \|" "$OUT/cublas.log"
fi
if [ -z "${NO_NCU:-}" ]; then  # one launch per shape and kernel, after warm-up
  for shape in 4096x4096 1024x4096 14336x4096 4096x14336; do
    for rows in 1 0; do
      HILO_GEMV_ROWS=$rows timeout 60 ncu --kernel-name regex:'row_gemv|mma_gemv' --launch-skip 5 --launch-count 1 \
        --metrics gpu__time_duration.sum,dram__throughput.avg.pct_of_peak_sustained_elapsed,sm__warps_active.avg.pct_of_peak_sustained_active \
        $bench $b --batches 1 --methods blockwise --shapes $shape > "$OUT/ncu-one.txt" 2>&1
      echo "$shape $([ $rows = 1 ] && echo row || echo cluster): $(grep -E 'gpu__time_duration|dram__throughput|warps_active' \
        "$OUT/ncu-one.txt" | awk '{printf "%s %s %s; ", $1, $(NF-1), $NF}')"
    done
  done | tee "$OUT/ncu.txt"
  rm -f "$OUT/ncu-one.txt"
fi
for tool in ${SANITIZERS-memcheck racecheck}; do
  timeout ${SANITIZE_TIMEOUT:-150} compute-sanitizer --tool $tool --error-exitcode 9 build-device/tests/hilo_tests \
    --gtest_filter='LordsCuda.RowGemvServesBlockwiseSmallBatches' > "$OUT/$tool.log" 2>&1
  echo "$tool rc=$? $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$OUT/$tool.log" | tail -1)"
done
rm -f "$OUT"/memcheck.log "$OUT"/racecheck.log
exit $rc
