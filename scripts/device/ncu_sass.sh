#!/usr/bin/env bash
# On the GPU machine: per-instruction Nsight Compute counters (warp-state samples by reason, instructions executed)
# and the summary sections of one launch of each kernel named in KERNELS (regexes, space-separated), in a run of
# the command given as arguments (clocks not locked; SKIP launches of each skipped first, default 20). Output:
# $OUT/sass-<n>.csv.gz (read with scripts/ncu_sass_stalls.py) and $OUT/profile-<n>.log, n = the regex's index.
# Usage (PREBUILT=1, carry ["build-carry"]): KERNELS="topk_kernel score_decode" scripts/device/ncu_sass.sh \
#   build-device/bench/bench_hisa_cuda --parts decode --batches 64 --decode-contexts 65536 --repeat 1
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/hilo-out}
mkdir -p "$OUT"
scripts/device/build_targets.sh "$(basename "$1")" > /dev/null || exit 1
n=0
for kernel in $KERNELS; do
  timeout "${NCU_TIMEOUT:-150}" ncu --clock-control none --kernel-name regex:"$kernel" --launch-skip "${SKIP:-20}" \
    --launch-count 1 --section SourceCounters --section WarpStateStats --section SpeedOfLight --section LaunchStats \
    --section Occupancy --section SchedulerStats --section ComputeWorkloadAnalysis --section MemoryWorkloadAnalysis \
    -o "$OUT/k$n" "$@" > /dev/null 2>&1
  echo "=== $kernel: $*" > "$OUT/profile-$n.log"
  ncu --import "$OUT/k$n.ncu-rep" --print-details all >> "$OUT/profile-$n.log" 2>&1
  ncu --import "$OUT/k$n.ncu-rep" --page source --print-source sass --csv 2> /dev/null | gzip > "$OUT/sass-$n.csv.gz"
  rm -f "$OUT/k$n.ncu-rep"
  grep -E "^  [a-zA-Z_].*\(|Duration|Registers Per|Achieved Occupancy|Executed Ipc A|DRAM Throughput|Block Limit" \
    "$OUT/profile-$n.log" | head -12
  n=$((n + 1))
done
