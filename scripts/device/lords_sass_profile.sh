#!/usr/bin/env bash
# On the GPU machine: per-instruction Nsight Compute counters (warp stall samples by reason, instructions executed)
# of LoRDS / block-wise kernels on one shape, for finding where their time goes, NF4 B=64, clocks not locked.
# PAIRS lists method:kernel-regex pairs (default: the batch-1 GEMVs, "lords:lords_gemv blockwise:row_gemv"; the
# large-batch GEMM is "blockwise:wgmma_gemm lords:wgmma_gemm" with BATCH=1024). Output:
# $OUT/sass-<method>-<kernel>-<shape>-b<batch>.csv.gz (ncu --page source --print-source sass; read them with
# scripts/ncu_sass_stalls.py) and $OUT/profile.log (the summary sections).
# Usage (device tool, carry [".device-deps"]): [SHAPE=4096x4096 BATCH=1 PAIRS=...] scripts/device/lords_sass_profile.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/hilo-out}
mkdir -p "$OUT"
[ -x build-device/bench/bench_lords_cuda ] || scripts/device/build_targets.sh bench_lords_cuda || exit 1
bench=build-device/bench/bench_lords_cuda
shape=${SHAPE:-4096x4096}
batch=${BATCH:-1}
for pair in ${PAIRS:-lords:lords_gemv blockwise:row_gemv}; do
  method=${pair%%:*}; kernel=${pair##*:}
  name=$method-$kernel-$shape-b$batch
  timeout 150 ncu --clock-control none --kernel-name regex:"$kernel" --launch-skip 5 --launch-count 1 \
    --section SourceCounters --section WarpStateStats --section SpeedOfLight --section LaunchStats \
    --section Occupancy --section SchedulerStats --section ComputeWorkloadAnalysis --section MemoryWorkloadAnalysis \
    -o "$OUT/$name" $bench --bits 4 --block 64 --batches "$batch" --methods $method --shapes $shape > "$OUT/ncu.log" 2>&1
  echo "=== $name" >> "$OUT/profile.log"
  # Nsight's own lines (no kernel matched, a replay that failed) where it wrote no report.
  [ -f "$OUT/$name.ncu-rep" ] || grep -a -E "==(ERROR|WARNING|PROF)==" "$OUT/ncu.log" | tail -8 >> "$OUT/profile.log"
  rm -f "$OUT/ncu.log"
  ncu --import "$OUT/$name.ncu-rep" --print-details all >> "$OUT/profile.log" 2>&1
  ncu --import "$OUT/$name.ncu-rep" --page source --print-source sass --csv 2> /dev/null | gzip > "$OUT/sass-$name.csv.gz"
  rm -f "$OUT/$name.ncu-rep"
done
ls -la "$OUT"
