#!/usr/bin/env bash
# On the GPU machine (PREBUILT=1, carry ["build-carry"]): where the small-batch GEMM's time goes. Nsight Compute
# durations of every kernel of one call (the GEMM and, with split k through the partial buffer, the split sum), then
# the benchmark under forced split counts and with programmatic dependent launch off, same process type and card.
# SHAPES (default 4096x4096,1024x4096), BATCHES (default 16), SPLITS (default "4 8 16 32"), SWEEP=0: durations only. Output: stdout and
# $OUT/results.tgz.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/hilo-out}
work=/tmp/study && rm -rf $work && mkdir -p $work
scripts/device/build_targets.sh bench_lords_cuda || exit 1
bench=build-device/bench/bench_lords_cuda
# BASE=1: also the base build of scripts/device/prebuilt_ab.sh (build-carry/base_bench_lords_cuda.gz), same shapes.
benches=$bench
if [ "${BASE:-0}" = 1 ]; then
  gunzip -c build-carry/base_bench_lords_cuda.gz > /tmp/base_bench_lords_cuda && chmod +x /tmp/base_bench_lords_cuda
  benches="/tmp/base_bench_lords_cuda $bench"
fi
nvidia-smi --query-gpu=name,clocks.max.sm --format=csv,noheader | tee $work/gpu.txt
shapes=${SHAPES:-4096x4096,1024x4096}
for b in $benches; do
for shape in ${shapes//,/ }; do
  for method in blockwise lords; do
    timeout 120 ncu --clock-control none --kernel-name regex:"gemm|sum_splits" --launch-skip 20 --launch-count 4 --section SpeedOfLight --csv \
      $b --bits 4 --block 64 --batches "${BATCHES:-16}" --methods $method --shapes $shape > $work/ncu-$method-$shape.csv 2>/dev/null
    echo "$(basename $b) $method $shape: $(python3 - "$work/ncu-$method-$shape.csv" <<'PY'
import csv, sys
rows = [r for r in csv.reader(open(sys.argv[1])) if len(r) > 10]
head = rows[0]; k, m, u, v = (head.index(c) for c in ("Kernel Name", "Metric Name", "Metric Unit", "Metric Value"))
print("; ".join(f"{r[k].split('(')[0].split('<')[0]} {r[v]} {r[u]}" for r in rows[1:] if r[m] == "Duration"))
PY
)"
  done
done
done
run() { echo "=== $*"; env "$@" timeout 100 $bench --bits 4 --block 64 --batches "${BATCHES:-16}" --shapes "$shapes" 2>&1 | tail -n +2; }
[ "${SWEEP:-1}" = 1 ] || { tar -czf "$OUT/results.tgz" -C $work .; exit 0; }
run HILO_PDL=1
run HILO_PDL=0
for s in ${SPLITS:-4 8 16 32}; do run HILO_GEMM_SPLIT=$s; done
tar -czf "$OUT/results.tgz" -C $work .
