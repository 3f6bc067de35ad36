#!/usr/bin/env bash
# On the GPU machine: per-instruction Nsight Compute counters of the flat prefill's wgmma scoring kernel (4096
# queries at the end of a 64K context, one launch after warm-up, clocks not locked). Output:
# $OUT/sass-score_keys_wgmma.csv.gz (read it with scripts/ncu_sass_stalls.py) and $OUT/profile-hisa.log.
# Usage (device tool, carry [".device-deps"]): scripts/device/hisa_sass_profile.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/hilo-out}
mkdir -p "$OUT"
[ -x build-device/bench/bench_hisa_cuda ] || scripts/device/build_targets.sh bench_hisa_cuda || exit 1
name=score_keys_wgmma
timeout 200 ncu --clock-control none --kernel-name regex:$name --launch-skip 20 --launch-count 1 \
  --section SourceCounters --section WarpStateStats --section SpeedOfLight --section LaunchStats --section Occupancy \
  --section SchedulerStats --section ComputeWorkloadAnalysis --section MemoryWorkloadAnalysis -o "$OUT/$name" \
  build-device/bench/bench_hisa_cuda --parts prefill --contexts 65536 --causal 8192 --repeat 1 > /dev/null 2>&1
ncu --import "$OUT/$name.ncu-rep" --print-details all > "$OUT/profile-hisa.log" 2>&1
ncu --import "$OUT/$name.ncu-rep" --page source --print-source sass --csv 2> /dev/null | gzip > "$OUT/sass-$name.csv.gz"
rm -f "$OUT/$name.ncu-rep"
