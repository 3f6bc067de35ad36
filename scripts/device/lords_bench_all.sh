#!/usr/bin/env bash
# On the GPU machine (PREBUILT=1, carry ["build-carry"]; or carry [".device-deps"] to build): the issue's LoRDS
# benchmark without the tests: NF4 and NF3 at B=64 and B=128 (CONFIGS, "BITS BLOCK" pairs joined by commas) at
# batches 1-1024 (LoRDS at the parity rank and block-wise), and cuBLAS bf16 on the same shapes and batches, all in
# one call, with the tables of scripts/lords_cuda_report.py in report.md; BNB_BATCHES (e.g. "1,16,1024"):
# bitsandbytes NF4 too (scripts/device/bnb_baseline.py, from build-carry/bnb.txz). JSON and the printed tables in
# $OUT/results.tgz.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/hilo-out}
work=/tmp/bench-all && rm -rf $work && mkdir -p $work
trap 'tar -czf "$OUT/results.tgz" -C $work .' EXIT  # what ran, also when a step times out
# BUILT=1: the caller has built or unpacked bench_lords_cuda already (lords_gpu.sh).
[ -n "${BUILT:-}" ] || scripts/device/build_targets.sh bench_lords_cuda || exit 1
bench=build-device/bench/bench_lords_cuda
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv,noheader | tee $work/gpu.txt
batches=${BATCHES:-1,4,16,64,256,1024}
IFS=, read -r -a configs <<< "${CONFIGS:-4 64,3 64,4 128,3 128}"
runs=()
for config in "${configs[@]}"; do
  read -r bits block <<< "$config"
  json=$work/lords-nf$bits-b$block.json
  timeout 120 $bench --bits "$bits" --block "$block" --batches "$batches" --json "$json" 2>&1 | tee -a $work/bench.log
  [ -f "$json" ] && runs+=("$json")
done
HILO_CUBLAS_BATCHES=$batches timeout 90 python3 scripts/device/cublas_baseline.py $work/cublas.json > $work/cublas.log 2>&1
tail -26 $work/cublas.log
python3 scripts/lords_cuda_report.py $work/cublas.json "${runs[@]}" > $work/report.md 2>&1
grep -A7 "Against the issue" $work/report.md
if [ -n "${BNB_BATCHES:-}" ]; then
  HILO_BNB_BATCHES=$BNB_BATCHES timeout 200 python3 scripts/device/bnb_baseline.py $work/bnb.json > $work/bnb.log 2>&1
  echo "bnb rc=$?"
  tail -4 $work/bnb.log
fi
