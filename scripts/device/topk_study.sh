#!/usr/bin/env bash
# On the GPU machine: the radix top-k alone (issue 4), every strategy on the vLLM-like shapes including clusters of
# 2, 4 and 8 CTAs per row, then Nsight Compute on one warm launch of the 4-CTA cluster at 64 x 128K (stall reasons
# and the hottest source lines). Usage (device tool, carry [".device-deps"]): scripts/device/topk_study.sh.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/hilo-out}
mkdir -p "$OUT"
[ -x build-device/bench/bench_hisa_cuda ] || scripts/device/build_targets.sh bench_hisa_cuda || exit 1
bench=build-device/bench/bench_hisa_cuda
nvidia-smi --query-gpu=name --format=csv,noheader
timeout 120 $bench --parts topk --repeat 9 --topk-clusters 2,4,8 --json "$OUT/topk.json" 2>&1 | tee "$OUT/topk.log"
# Launch order for one shape: one CTA per row (1 + 9 launches), segments (2 per call), then the 4-CTA cluster.
timeout 150 ncu --kernel-name regex:topk_kernel --launch-skip 31 --launch-count 1 --section SpeedOfLight \
  --section WarpStateStats --section SourceCounters --section Occupancy --section LaunchStats \
  $bench --parts topk --repeat 9 --topk-shapes 64x131072 --topk-clusters 4 > "$OUT/ncu-topk-cluster4.txt" 2>&1
grep -E "Duration|Grid Size|Cluster|Registers|Achieved Occupancy|Stall|Warp Cycles|Issued|Throughput" \
  "$OUT/ncu-topk-cluster4.txt" | head -40
