#!/usr/bin/env bash
# On the GPU machine (PREBUILT=1, carry ["build-carry"]; or carry [".device-deps"] to build): the issue's LoRDS
# benchmark without the tests: NF4 B=64, NF3 B=64 and NF4 B=128 at batches 1-1024 (LoRDS at the parity rank and
# block-wise), and cuBLAS bf16 on the same shapes and batches, all in one call; BNB_BATCHES (e.g. "1,16,1024"):
# bitsandbytes NF4 too (scripts/device/bnb_baseline.py, from build-carry/bnb.txz). JSON and the printed tables in
# $OUT/results.tgz.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/hilo-out}
work=/tmp/bench-all && rm -rf $work && mkdir -p $work
trap 'tar -czf "$OUT/results.tgz" -C $work .' EXIT  # what ran, also when a step times out
scripts/device/build_targets.sh bench_lords_cuda || exit 1
bench=build-device/bench/bench_lords_cuda
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv,noheader | tee $work/gpu.txt
batches=${BATCHES:-1,4,16,64,256,1024}
for config in "4 64" "3 64" "4 128"; do
  read -r bits block <<< "$config"
  timeout 150 $bench --bits "$bits" --block "$block" --batches "$batches" --json "$work/lords-nf$bits-b$block.json" 2>&1 |
    tee -a $work/bench.log
done
HILO_CUBLAS_BATCHES=$batches timeout 90 python3 scripts/device/cublas_baseline.py $work/cublas.json > $work/cublas.log 2>&1
tail -26 $work/cublas.log
if [ -n "${BNB_BATCHES:-}" ]; then
  HILO_BNB_BATCHES=$BNB_BATCHES timeout 200 python3 scripts/device/bnb_baseline.py $work/bnb.json > $work/bnb.log 2>&1
  echo "bnb rc=$?"
  tail -4 $work/bnb.log
fi
