#!/usr/bin/env bash
# On the GPU machine (PREBUILT=1, carry ["build-carry"]): the LoRDS batch-1 GEMV's geometry swept on the current card:
# rows per CTA (HILO_LORDS_WR row warps x 32) x column slabs (HILO_LORDS_SPLIT), one process per setting, NF4 B=64,
# the four Llama-3-8B shapes at parity rank, against the cost model's choice (first two runs) in the same call.
# FORMATS: the formats, ";"-separated (default "--bits 4 --block 64"); WRS, SPLITS: the values tried. Output:
# $OUT/sweep.log (each run's table and the candidates the model priced) and a summary on stdout.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/hilo-out}
mkdir -p "$OUT"
scripts/device/build_targets.sh bench_lords_cuda > /dev/null || exit 1
bench=build-device/bench/bench_lords_cuda
log="$OUT/sweep.log"
: > "$log"
run() {
  echo "=== $format | $*" >> "$log"
  read -r -a fmt <<< "$format"
  env "$@" HILO_LORDS_VERBOSE=1 timeout 60 $bench "${fmt[@]}" --batches 1 --methods lords > /tmp/sweep1.log 2>&1
  cat /tmp/sweep1.log >> "$log"
  echo "$format | $* | $(grep -E '^ +[0-9]+x[0-9]+ +1 +lords' /tmp/sweep1.log | awk '{print $1 " " $5}' | tr '\n' ' ')"
}
IFS=';' read -r -a formats <<< "${FORMATS:---bits 4 --block 64}"
for format in "${formats[@]}"; do
  run HILO_LORDS_WR=0
  run HILO_LORDS_WR=0
  for wr in ${WRS:-2 4 8 16}; do
    for ks in ${SPLITS:-1 2 3 4 6 8}; do run HILO_LORDS_WR=$wr HILO_LORDS_SPLIT=$ks; done
  done
done
