#!/usr/bin/env bash
# On the GPU machine: Nsight Compute sections for the indexer's kernels: the top-k (64 rows of 128K, one CTA per
# row) and the wgmma scoring kernel (flat prefill, 4096 queries at the end of a 64K context), one launch each after
# warm-up. Usage (device tool, carry [".device-deps"]): scripts/device/hisa_profile.sh (after a build).
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/hilo-out}
mkdir -p "$OUT"
[ -x build-device/bench/bench_hisa_cuda ] || scripts/device/build_targets.sh bench_hisa_cuda || exit 1
sections=(--section SpeedOfLight --section Occupancy --section LaunchStats --section WarpStateStats
          --section MemoryWorkloadAnalysis --section SchedulerStats --section ComputeWorkloadAnalysis)
summary='Duration|Throughput|Registers|Achieved Occupancy|Grid Size|Stall|Warp Cycles|Issued|Eligible|Pipe|Executed Ipc'
timeout 150 ncu --kernel-name regex:topk_kernel --launch-skip ${TOPK_SKIP:-26} --launch-count 1 "${sections[@]}" \
  build-device/bench/bench_hisa_cuda --parts topk --repeat 5 > "$OUT/ncu-topk.txt" 2>&1
grep -E "$summary" "$OUT/ncu-topk.txt" | head -40
timeout 200 ncu --kernel-name regex:score_keys_wgmma --launch-skip 20 --launch-count 1 "${sections[@]}" \
  build-device/bench/bench_hisa_cuda --parts prefill --contexts 65536 --causal 8192 --repeat 1 > "$OUT/ncu-wgmma.txt" 2>&1
grep -E "$summary" "$OUT/ncu-wgmma.txt" | head -40
# Why the wgmma kernel's warps wait: stall reasons per issued instruction.
timeout 150 ncu --kernel-name regex:score_keys_wgmma --launch-skip 20 --launch-count 1 \
  --metrics regex:smsp__average_warps_issue_stalled_.*_per_issue_active\.ratio,smsp__inst_executed.sum,sm__pipe_tensor_op_gmma_cycles_active.avg.pct_of_peak_sustained_active,smsp__cycles_active.avg \
  build-device/bench/bench_hisa_cuda --parts prefill --contexts 65536 --causal 8192 --repeat 1 > "$OUT/ncu-wgmma-stalls.txt" 2>&1
grep -E "stalled|inst_executed|gmma|cycles_active" "$OUT/ncu-wgmma-stalls.txt" | awk '$NF+0 > 0.05 || /inst|gmma|cycles/' | head -30
