#!/usr/bin/env bash
# On the GPU machine: the batch-1 GEMVs' split-K reduction, push (cluster_sum_push, the default) against pull
# (HILO_CLUSTER_PUSH=0: cluster_sum), in one call. Builds; runs the LoRDS GPU tests with each; compute-sanitizer
# memcheck and racecheck on the back-to-back chain with push; benchmarks NF4 B=64 batch 1 for both methods, push and
# pull, each with and without programmatic dependent launch; then the LoRDS geometry sweep (lords_geometry.sh) with
# push at GEOMETRY_SHAPES (default 4096x4096), WRS and SPLITS.
# Usage (device tool, carry [".device-deps"]): scripts/device/lords_push.sh. Results in $OUT: bench-{push,pull}-pdl{1,0}.json,
# bench.log, geometry.txt.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/hilo-out}
mkdir -p "$OUT"
scripts/device/build_targets.sh hilo_tests bench_lords_cuda || exit 1
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv,noheader | tee "$OUT/bench.log"
rc=0
for push in 1 0; do
  HILO_CLUSTER_PUSH=$push timeout 240 build-device/tests/hilo_tests --gtest_filter="LordsCuda*:LordsGpuLayout*" \
    > "$OUT/tests-$push.log" 2>&1
  r=$?
  echo "tests HILO_CLUSTER_PUSH=$push rc $r" | tee -a "$OUT/bench.log"
  grep -E "^\[  (PASSED|FAILED)|FAILED  \]|Failure|exception|Expected|Which" "$OUT/tests-$push.log" | head -20
  [ $r = 0 ] || rc=$r
done
scripts/device/sanitize_chain.sh "$OUT/bench.log" || rc=$?
[ $rc = 0 ] && rm -f "$OUT"/tests-*.log
bench=build-device/bench/bench_lords_cuda
for push in 1 0; do
  name=$([ $push = 1 ] && echo push || echo pull)
  for pdl in 1 0; do
    echo "--- $name, HILO_PDL=$pdl" | tee -a "$OUT/bench.log"
    HILO_CLUSTER_PUSH=$push HILO_PDL=$pdl timeout 200 $bench --bits 4 --block 64 --batches 1 \
      --json "$OUT/bench-$name-pdl$pdl.json" 2>&1 | grep -E "shape|  1 +(blockwise|lords)" |
      tee -a "$OUT/bench.log"
  done
done
echo "=== geometry sweep (push)" >> "$OUT/bench.log"
HILO_CLUSTER_PUSH=1 SHAPES="${GEOMETRY_SHAPES:-4096x4096}" WRS="${WRS:-4 8 16}" SPLITS="${SPLITS:-2 4 6 8}" \
  scripts/device/lords_geometry.sh > /dev/null
cat "$OUT/geometry.txt" >> "$OUT/bench.log"
cat "$OUT/geometry.txt"
exit $rc
