#!/usr/bin/env bash
# On the GPU machine: the LoRDS batch-1 GEMV's geometry (rows per CTA = 32 x HILO_LORDS_WR, column slabs =
# HILO_LORDS_SPLIT, one cluster per row range) swept on the Llama-3-8B shapes, NF4 B=64, with the candidates the cost
# model saw (clusters resident, waves). One process per setting (the overrides are read once).
# Usage (device tool, carry [".device-deps"]): scripts/device/lords_geometry.sh (SHAPES, WRS, SPLITS override the
# lists). Output: $OUT/geometry.txt.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/hilo-out}
mkdir -p "$OUT"
[ -x build-device/bench/bench_lords_cuda ] || scripts/device/build_targets.sh bench_lords_cuda || exit 1
bench=build-device/bench/bench_lords_cuda
log="$OUT/geometry.txt"
: > "$log"
for shape in ${SHAPES:-4096x4096 1024x4096 14336x4096 4096x14336}; do
  echo "=== $shape, the rule" >> "$log"
  HILO_LORDS_VERBOSE=1 timeout 60 $bench --bits 4 --block 64 --batches 1 --methods lords --shapes $shape 2>&1 |
    grep -E "candidate|lords_gemv|  1 +lords" >> "$log"
  for wr in ${WRS:-2 4 8}; do
    for ks in ${SPLITS:-2 3 4 6 8}; do
      r=$(HILO_LORDS_WR=$wr HILO_LORDS_SPLIT=$ks timeout 60 $bench --bits 4 --block 64 --batches 1 --methods lords \
        --shapes $shape 2>&1 | grep -E "  1 +lords" | awk '{print $5}')
      echo "$shape WR $wr (rows/CTA $((32 * wr))) split $ks: ${r:-n/a} us" >> "$log"
    done
  done
done
cat "$log"
