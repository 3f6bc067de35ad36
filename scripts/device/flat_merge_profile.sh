#!/usr/bin/env bash
# On the GPU machine: Nsight Compute on the flat prefill's merge kernel (topk_kernel over MergeRows), 4096 queries at
# the end of a 64K context (bench_hisa_cuda --flat-only: the A/B variants' calls come first, 64 merges; then the
# default's warm-up call), clocks not locked. LAUNCH (default 64: the first merge of row block 0, two passes; 66: its
# third, one read) picks the launch. Output: $OUT/profile-merge-LAUNCH.log (sections) and
# $OUT/source-merge-LAUNCH.csv.gz (per CUDA source line; scripts/ncu_sass_stalls.py reads the SASS form).
# Usage (device tool, carry [".device-deps"]): scripts/device/flat_merge_profile.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/hilo-out}
mkdir -p "$OUT"
[ -x build-device/bench/bench_hisa_cuda ] || scripts/device/build_targets.sh bench_hisa_cuda || exit 1
for launch in ${LAUNCHES:-64 66}; do
  rep=$OUT/merge-$launch
  timeout 200 ncu --clock-control none --kernel-name regex:topk_kernel --launch-skip "$launch" --launch-count 1 \
    --section SourceCounters --section WarpStateStats --section SpeedOfLight --section LaunchStats \
    --section Occupancy --section SchedulerStats --section MemoryWorkloadAnalysis -o "$rep" \
    build-device/bench/bench_hisa_cuda --parts prefill --contexts 65536 --causal "" --flat-only --repeat 1 \
    > /dev/null 2>&1
  ncu --import "$rep.ncu-rep" --print-details all > "$OUT/profile-merge-$launch.log" 2>&1
  ncu --import "$rep.ncu-rep" --page source --print-source cuda --csv 2> /dev/null | gzip > "$OUT/source-merge-$launch.csv.gz"
  ncu --import "$rep.ncu-rep" --page source --print-source sass --csv 2> /dev/null | gzip > "$OUT/sass-merge-$launch.csv.gz"
  rm -f "$rep.ncu-rep"
  grep -E "Duration|Registers Per|Achieved Occupancy|Theoretical Occupancy|Eligible Warps|Issued Warp|Block Limit|DRAM Throughput|Warp Cycles Per Issued" \
    "$OUT/profile-merge-$launch.log" | head -20
  python3 scripts/ncu_sass_stalls.py "$OUT/sass-merge-$launch.csv.gz" --top 25
done
