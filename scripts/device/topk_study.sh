#!/usr/bin/env bash
# On the GPU machine: the radix top-k alone (issue 4), every strategy on the vLLM-like shapes including clusters of
# 2, 4 and 8 CTAs per row, then Nsight Compute at 64 x 128K (stall reasons and the hottest source lines). NO_SWEEP=1
# skips the sweep. Usage (device tool, carry [".device-deps"]): scripts/device/topk_study.sh.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/hilo-out}
mkdir -p "$OUT"
[ -x build-device/bench/bench_hisa_cuda ] || scripts/device/build_targets.sh bench_hisa_cuda || exit 1
bench=build-device/bench/bench_hisa_cuda
nvidia-smi --query-gpu=name --format=csv,noheader
[ -n "${NO_SWEEP:-}" ] || timeout 120 $bench --parts topk --repeat 9 --topk-clusters 2,4,8 --json "$OUT/topk.json" 2>&1 | tee "$OUT/topk.log"
# Nsight Compute on 64 x 128K, one launch each of the automatic split (2 CTAs per row) with 16-byte loads and with
# element-wise loads (TopkTuning::vector_loads). Launch order with --repeat 1 --topk-clusters 2 (each timing is a
# warm-up call and one timed call): one CTA per row (2 launches), segments (2 x 2), cluster of 2 (2), automatic
# element-wise (2), automatic (2).
for variant in "vector 6" "element-wise 8"; do
  set -- $variant
  timeout 150 ncu --kernel-name regex:topk_kernel --launch-skip "$2" --launch-count 1 --section SpeedOfLight \
    --section WarpStateStats --section SourceCounters --section Occupancy --section LaunchStats \
    --section InstructionStats --section MemoryWorkloadAnalysis \
    $bench --parts topk --repeat 1 --topk-shapes 64x131072 --topk-clusters 2 > "$OUT/ncu-topk-$1.txt" 2>&1
  echo "== $1 (rc $?)"
  grep -E "Duration|Grid Size|Cluster Size|Registers Per|Achieved Occupancy|Stall|Warp Cycles Per Issued|Executed Instructions  |DRAM Throughput|Memory Throughput|L2 Hit|Executed Ipc A" \
    "$OUT/ncu-topk-$1.txt" | head -30
done
