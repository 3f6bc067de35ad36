#!/usr/bin/env bash
# On the GPU machine: per-instruction Nsight Compute counters (warp stall samples by reason, instructions executed)
# of the batch-1 GEMVs on one shape, for finding where their time goes: the LoRDS GEMV and the block-wise row GEMV,
# NF4 B=64, clocks not locked. Output: $OUT/sass-<kernel>-<shape>.csv.gz (ncu --page source --print-source sass) and
# $OUT/profile.log (the summary sections).
# Usage (device tool, carry [".device-deps"]): SHAPE=4096x4096 scripts/device/lords_sass_profile.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/hilo-out}
mkdir -p "$OUT"
[ -x build-device/bench/bench_lords_cuda ] || scripts/device/build_targets.sh bench_lords_cuda || exit 1
bench=build-device/bench/bench_lords_cuda
shape=${SHAPE:-4096x4096}
for pair in "lords:lords_gemv" "blockwise:row_gemv"; do
  method=${pair%%:*}; kernel=${pair##*:}
  timeout 120 ncu --clock-control none --kernel-name regex:"$kernel" --launch-skip 5 --launch-count 1 \
    --section SourceCounters --section WarpStateStats --section SpeedOfLight --section LaunchStats \
    -o "$OUT/$kernel" $bench --bits 4 --block 64 --batches 1 --methods $method --shapes $shape > /dev/null 2>&1
  ncu --import "$OUT/$kernel.ncu-rep" --print-details all >> "$OUT/profile.log" 2>&1
  ncu --import "$OUT/$kernel.ncu-rep" --page source --print-source sass --csv 2> /dev/null |
    gzip > "$OUT/sass-$kernel-$shape.csv.gz"
  rm -f "$OUT/$kernel.ncu-rep"
done
ls -la "$OUT"
