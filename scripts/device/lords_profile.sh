#!/usr/bin/env bash
# On the GPU machine: Nsight Compute sections for the LoRDS / block-wise tensor-core matmul (one launch each, after
# warm-up). Usage (device tool, carry [".device-deps"]): [KERNEL=mma_gemm BATCH=1024 SHAPE=4096x4096
# METHODS="blockwise lords"] scripts/device/lords_profile.sh (defaults: the GEMV at batch 1 on 4096x4096).
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/hilo-out}
mkdir -p "$OUT"
scripts/device/build_targets.sh bench_lords_cuda || exit 1
for method in ${METHODS:-blockwise lords}; do
  timeout 120 ncu --kernel-name regex:${KERNEL:-mma_gemv} --launch-skip 30 --launch-count 1 --section SpeedOfLight \
    --section Occupancy --section LaunchStats --section WarpStateStats --section MemoryWorkloadAnalysis \
    --section SchedulerStats --section InstructionStats \
    --metrics "regex:smsp__average_warps_issue_stalled_.*_per_issue_active\.ratio" build-device/bench/bench_lords_cuda --bits 4 --block 64 --batches ${BATCH:-1} \
    --shapes ${SHAPE:-4096x4096} --methods $method > "$OUT/ncu-$method.txt" 2>&1
  grep -E "stalled_.*[0-9]\.[0-9]|Duration|Throughput|Registers|Achieved Occupancy|Theoretical Occupancy|Stall|Warp Cycles|Issued|Eligible|Block Limit|Cluster|Waves|Shared Memory Config|Dynamic Shared" "$OUT/ncu-$method.txt" | grep -vE "stalled_.* 0(\.0+)?$" | head -70
done
