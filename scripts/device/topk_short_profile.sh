#!/usr/bin/env bash
# On the GPU machine: Nsight Compute on HISA's token-stage top-k (the short-row kernel over TokenCandidates, 2048
# rows of 8192 candidates: a 4096-query chunk at the end of a 64K context), one launch per kernel named in KERNELS,
# with occupancy, instruction counts and stall reasons. Usage (device tool, carry [".device-deps"]):
# KERNELS="topk_short_kernel" scripts/device/topk_short_profile.sh (after a build, or it builds the benchmark).
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/hilo-out}
mkdir -p "$OUT"
[ -x build-device/bench/bench_hisa_cuda ] || scripts/device/build_targets.sh bench_hisa_cuda || exit 1
summary='Duration|Registers Per|Theoretical Occupancy|Achieved Occupancy|Block Limit (Reg|Shared)|Executed Ipc Active|Issue Slots Busy|Executed Instructions  |DRAM Throughput|stalled|inst_executed.sum'
for kernel in ${KERNELS:-topk_short_kernel}; do
  timeout 200 ncu --kernel-name-base demangled --kernel-name "regex:$kernel<.*TokenCandidates" \
    --launch-count 1 --section SpeedOfLight --section Occupancy --section LaunchStats --section SchedulerStats \
    --section InstructionStats \
    --metrics regex:smsp__average_warps_issue_stalled_.*_per_issue_active\.ratio,smsp__inst_executed.sum \
    build-device/bench/bench_hisa_cuda --parts prefill --contexts 65536 --causal 8192 --repeat 1 \
    > "$OUT/ncu-$kernel.txt" 2>&1
  echo "== $kernel (rc $?)"
  grep -E "$summary" "$OUT/ncu-$kernel.txt" | awk '!/stalled/ || $NF+0 > 0.2' | head -30
done
