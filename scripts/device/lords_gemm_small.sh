#!/usr/bin/env bash
# On the GPU machine: the small-batch GEMM (batch 9..32) against a base revision, in one call. Builds this tree and,
# from BASE_TAR (a `git archive` of the base revision, optional), the base's benchmark alongside; runs the LoRDS GPU
# tests; compute-sanitizer memcheck and racecheck on the back-to-back chain (its batch-16 step runs the GEMM over a
# cluster); benchmarks NF4 B=64 at BATCHES (default 8,16,32,64) for both methods, base and new in turn, then the
# new one with HILO_GEMM_NT4=1 at batch 16 (NT4=0 skips it) and a sweep of HILO_GEMM_SPLIT (SPLITS; "8p": 8 splits
# through the partial buffer) at SPLIT_BATCHES on SPLIT_SHAPES (SPLIT_SHAPES="" skips it; the rule's own choice is the "new" run).
# Usage (device tool, carry [".device-deps"]): BASE_TAR=base.tar scripts/device/lords_gemm_small.sh.
# Results in $OUT: bench-new.json, bench-base.json, bench.log.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/hilo-out}
mkdir -p "$OUT"
source scripts/device/gemm_prelude.sh
show_test_failures
scripts/device/sanitize_chain.sh "$OUT/bench.log" || rc=$?
[ $rc = 0 ] && rm -f "$OUT/tests.log"
batches=${BATCHES:-8,16,32,64}
pick() { grep -E "shape| ($(echo "$batches" | tr , '|')) +(blockwise|lords)"; }
base=/tmp/base/build-device/bench/bench_lords_cuda
if [ -x $base ]; then
  echo "--- base" | tee -a "$OUT/bench.log"
  timeout 200 $base --bits 4 --block 64 --batches $batches --json "$OUT/bench-base.json" 2>&1 | pick | tee -a "$OUT/bench.log"
else
  echo "no base build: $(tail -5 /tmp/base-out/log 2>/dev/null)" | tee -a "$OUT/bench.log"
fi
bench=build-device/bench/bench_lords_cuda
echo "--- new" | tee -a "$OUT/bench.log"
timeout 200 $bench --bits 4 --block 64 --batches $batches --json "$OUT/bench-new.json" 2>&1 | pick | tee -a "$OUT/bench.log"
if [ "${NT4:-1}" = 1 ]; then
  echo "--- new, HILO_GEMM_NT4=1 (32 activation rows per CTA) at batch 16" | tee -a "$OUT/bench.log"
  HILO_GEMM_NT4=1 timeout 100 $bench --bits 4 --block 64 --batches 16 2>&1 | grep -E "  16 +(blockwise|lords)" |
    tee -a "$OUT/bench.log"
fi
split_batches=${SPLIT_BATCHES:-16,32}
for shape in ${SPLIT_SHAPES-4096x4096 1024x4096 14336x4096 4096x14336}; do
  for ks in ${SPLITS:-4 8 8p 16 32}; do  # "p": HILO_GEMM_CLUSTER=0 (partial buffer and second kernel)
    env=()
    case $ks in
      *p) env=(HILO_GEMM_CLUSTER=0 HILO_GEMM_SPLIT=${ks%p}) ;;
      *) env=(HILO_GEMM_SPLIT=$ks) ;;
    esac
    r=$(env "${env[@]}" timeout 60 $bench --bits 4 --block 64 --batches $split_batches --shapes $shape 2>&1 |
      grep -E "  ($(echo "$split_batches" | tr , '|')) +(blockwise|lords)" | awk '{printf "%s %s %s us  ", $2, $3, $5}')
    echo "$shape HILO_GEMM_SPLIT=$ks: $r" | tee -a "$OUT/bench.log"
  done
done
exit $rc
