#!/usr/bin/env bash
# On the GPU machine: the LoRDS GEMV for one activation row (src/lords/cuda/lords_gemv.cu) in one call. Builds; runs
# the LoRDS GPU tests (and TESTS_EXTRA, a gtest filter) and compute-sanitizer memcheck/racecheck on its test;
# benchmarks NF4 B=64 at batch 1 (both methods: LoRDS on the new GEMV, block-wise on the row GEMV), LoRDS again with
# HILO_LORDS_GEMV=0 (the previous kernels: cluster GEMV, GEMM at rank 64), a sweep of the geometry (HILO_LORDS_WR x
# HILO_LORDS_SPLIT), NF3 B=64 and NF4 B=128; cuBLAS bf16 in the same run; Nsight Compute on the new kernel. The
# wide-rank variant runs on wgmma by default, with x * A converted once per call by a prepass kernel; the tests and the
# NF4 benchmark run again with HILO_LORDS_WGMMA=0, the tests with HILO_LORDS_XA_PREPASS=1 (the prepass for every
# variant) and the NF4 benchmark with HILO_LORDS_XA_PREPASS=0 (none: the same-run baseline for the prepass).
# Usage (device tool, carry [".device-deps"]): scripts/device/lords_batch1.sh (NO_SWEEP=1, NO_CUBLAS=1, NO_NCU=1,
# SANITIZERS="" skip parts; SANITIZE_ENV="VAR=VALUE" sets variables for the sanitizer runs; NCU_DETAIL="SHAPE ..."
# adds full Nsight Compute sections for those shapes; SASS=1 saves the 4-bit kernels' SASS). Results in $OUT (the
# device tool returns at most 8 files): batch1-*.json, bench.log, cublas-baseline.json, sweep.txt, the SASS, Nsight
# Compute detail; the parts run in that order.
# Time (H100, 2026-12-05): 230 s with NO_SWEEP=1 NO_NCU=1, the build (16 cores) and both sanitizers included.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/hilo-out}
mkdir -p "$OUT"
scripts/device/build_targets.sh hilo_tests bench_lords_cuda || exit 1
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv,noheader
timeout 300 build-device/tests/hilo_tests --gtest_filter="LordsCuda*:LordsGpuLayout*${TESTS_EXTRA:+:$TESTS_EXTRA}" \
  > "$OUT/tests.log" 2>&1
rc=$?
echo "tests rc $rc"; grep -E "^\[  (PASSED|FAILED)|FAILED  \]|Failure|exception|Expected|Which|near|OK \] .*[0-9]{4,} ms" \
  "$OUT/tests.log" | head -30
HILO_LORDS_WGMMA=0 timeout 200 build-device/tests/hilo_tests \
  --gtest_filter="LordsCuda.LordsGemvServesBatchOne:LordsCuda.EveryRankWidthAndActivationRange" > "$OUT/tests-mma.log" 2>&1
echo "tests with HILO_LORDS_WGMMA=0 rc $?"; grep -E "^\[  (PASSED|FAILED)|Failure|exception" "$OUT/tests-mma.log" | head -8
batch1_tests="LordsCuda.LordsGemvServesBatchOne:LordsCuda.EveryRankWidthAndActivationRange:LordsCuda.NonFiniteActivationsStayInTheirRows"
for wg in 1 0; do
  HILO_LORDS_XA_PREPASS=1 HILO_LORDS_WGMMA=$wg timeout 200 build-device/tests/hilo_tests --gtest_filter="$batch1_tests" \
    > "$OUT/tests-prepass.log" 2>&1
  prc=$?
  echo "tests with HILO_LORDS_XA_PREPASS=1 HILO_LORDS_WGMMA=$wg rc $prc"
  grep -E "^\[  (PASSED|FAILED)|Failure|exception|Expected|Which" "$OUT/tests-prepass.log" | head -12
  [ $prc = 0 ] || rc=$prc
done
bench=build-device/bench/bench_lords_cuda
export HILO_LORDS_VERBOSE=1
timeout 120 $bench --bits 4 --block 64 --batches 1 --json "$OUT/batch1-nf4-b64.json" 2>&1 | tee "$OUT/bench.log"
HILO_LORDS_WGMMA=0 timeout 120 $bench --bits 4 --block 64 --batches 1 --methods lords \
  --json "$OUT/batch1-nf4-b64-mma-sync.json" 2>&1 | tail -5 | tee -a "$OUT/bench.log"
HILO_LORDS_XA_PREPASS=0 timeout 120 $bench --bits 4 --block 64 --batches 1 --methods lords \
  --json "$OUT/batch1-nf4-b64-no-prepass.json" 2>&1 | tail -5 | tee -a "$OUT/bench.log"
HILO_LORDS_GEMV=0 timeout 120 $bench --bits 4 --block 64 --batches 1 --methods lords \
  --json "$OUT/batch1-nf4-b64-previous.json" 2>&1 | tail -5 | tee -a "$OUT/bench.log"
timeout 90 $bench --bits 3 --block 64 --batches 1 2>&1 | tail -9 | tee -a "$OUT/bench.log"
timeout 90 $bench --bits 4 --block 128 --batches 1 2>&1 | tail -9 | tee -a "$OUT/bench.log"
if [ -z "${NO_CUBLAS:-}" ]; then
  timeout 120 python3 scripts/device/cublas_baseline.py "$OUT/cublas-baseline.json" > "$OUT/cublas.log" 2>&1
  grep -E "copy|\| [0-9]+x[0-9]+ \| 1 \|" "$OUT/cublas.log"
fi
for tool in ${SANITIZERS-memcheck racecheck}; do
  env ${SANITIZE_ENV:-} timeout ${SANITIZE_TIMEOUT:-150} compute-sanitizer --tool $tool --error-exitcode 9 build-device/tests/hilo_tests \
    --gtest_filter='LordsCuda.LordsGemvServesBatchOne' > "$OUT/$tool.log" 2>&1
  echo "$tool rc=$? $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$OUT/$tool.log" | tail -1)"
done
rm -f "$OUT"/memcheck.log "$OUT"/racecheck.log "$OUT"/cublas.log
[ $rc = 0 ] && rm -f "$OUT"/tests.log "$OUT"/tests-mma.log "$OUT"/tests-prepass.log  # the device tool returns at most 8 files
if [ -n "${SASS:-}" ]; then  # the 4-bit kernels' SASS, for instruction counts per step
  cuobjdump -sass build-device/src/CMakeFiles/hilo_cuda.dir/lords/cuda/lords_gemv.cu.o |
    awk '/Function : .*lords_gemv_kernelILi4E/{p=1} /Function : .*lords_gemv_kernelILi[23]E/{p=0} p' |
    gzip > "$OUT/lords_gemv-4bit.sass.gz"
fi
if [ -z "${NO_SWEEP:-}" ]; then  # rows per CTA (32 x WR) x column slabs
  for wr in ${SWEEP_WR:-16 8 4 2}; do
    for ks in ${SWEEP_SPLIT:-1 2 4 8}; do
      HILO_LORDS_WR=$wr HILO_LORDS_SPLIT=$ks timeout 60 $bench --bits 4 --block 64 --batches 1 --methods lords 2>&1 |
        grep -E "^ +[0-9]+x[0-9]+ +1 +lords" | awk -v wr=$wr -v ks=$ks '{printf "WR %2d split %d %s %s us\n", wr, ks, $1, $5}'
    done
  done | tee "$OUT/sweep.txt"
fi
if [ -z "${NO_NCU:-}" ]; then  # one launch per shape, after warm-up
  for shape in 4096x4096 1024x4096 14336x4096 4096x14336; do
    timeout 60 ncu --kernel-name regex:'lords_gemv|row_gemv' --launch-skip 5 --launch-count 1 \
      --metrics gpu__time_duration.sum,dram__throughput.avg.pct_of_peak_sustained_elapsed,sm__warps_active.avg.pct_of_peak_sustained_active,smsp__inst_executed.sum,sm__pipe_tensor_op_hmma_cycles_active.avg.pct_of_peak_sustained_active,l1tex__data_pipe_lsu_wavefronts_mem_shared.avg.pct_of_peak_sustained_elapsed \
      $bench --bits 4 --block 64 --batches 1 --methods lords --shapes $shape > "$OUT/ncu-one.txt" 2>&1
    echo "$shape: $(grep -E 'gpu__time|dram__|warps_active|inst_executed|hmma|wavefronts' "$OUT/ncu-one.txt" |
      awk '{printf "%s %s %s; ", $1, $(NF-1), $NF}')"
  done
  rm -f "$OUT/ncu-one.txt"
fi
for shape in ${NCU_DETAIL:-}; do  # full sections (stall reasons, pipes, source counters) for the listed shapes
  timeout 90 ncu --kernel-name regex:'lords_gemv' --launch-skip 5 --launch-count 1 --section SpeedOfLight \
    --section WarpStateStats --section ComputeWorkloadAnalysis --section Occupancy --section LaunchStats \
    --section SourceCounters $bench --bits 4 --block 64 --batches 1 --methods lords --shapes $shape \
    > "$OUT/ncu-detail-$shape.txt" 2>&1
done
exit $rc
