#!/usr/bin/env bash
# On the GPU machine: the batch-1 GEMV's launch geometry swept (issue 5): column slabs per row range
# (HILO_MMA_SPLIT = cluster size 1..8) x row tiles per warp (HILO_MMA_MT = 1, 2), against the default rule, NF4 B=64,
# the four Llama-3-8B shapes, block-wise and LoRDS, one process per setting (the overrides are read once). Each
# setting's first launches print grid, cluster, CTAs per SM and the most clusters the GPU holds at once.
# Usage (device tool, carry [".device-deps"]): scripts/device/lords_gemv_sweep.sh. Output: $OUT/gemv-sweep.log.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/hilo-out}
mkdir -p "$OUT"
[ -x build-device/bench/bench_lords_cuda ] || scripts/device/build_targets.sh bench_lords_cuda || exit 1
bench=build-device/bench/bench_lords_cuda
log="$OUT/gemv-sweep.log"
: > "$log"
for mt in default 1 2; do
  for split in default ${SPLITS:-1 2 3 4 5 6 8}; do
    [ "$mt" = default ] && [ "$split" != default ] && continue
    echo "=== MT=$mt SPLIT=$split" >> "$log"
    env $([ "$mt" != default ] && echo HILO_MMA_MT=$mt) $([ "$split" != default ] && echo HILO_MMA_SPLIT=$split) \
      HILO_MMA_VERBOSE=1 timeout 60 $bench --bits 4 --block 64 --batches 1 >> "$log" 2>&1
  done
done
grep -E "^===|  1 " "$log"
