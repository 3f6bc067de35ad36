#!/usr/bin/env bash
# On the GPU machine: the batch GEMM on wgmma (batches >= 33) against the mma.sync GEMM (HILO_GEMM_WGMMA=0, same
# binary) and cuBLAS bf16 (torch, same call), in one call, in this order (the most needed first, should the call be
# cut short): build; the LoRDS GPU tests, and the two-GEMM test again with 256 activation rows per CTA
# (HILO_GEMM_BN=256); NF4 B=64 at BATCHES (default 64,256,1024), both methods, by the library's own rule with
# nothing forced (wgmma from batch 33; unforced, so that a dispatch bug shows in the numbers); cuBLAS (CUBLAS=0
# skips); compute-sanitizer memcheck and racecheck on the two-GEMM test and the back-to-back chain (SANITIZE=0
# skips); the benchmark at HILO_GEMM_BN=256 (BN256=0 skips) and 128 (BN128=1 adds it), at BN_BATCHES; mma.sync at
# MMA_BATCHES (MMA=0 skips); NF3 at 1024 (BITS3=0 skips).
# BASE_TAR (a `git archive` of a base revision) adds that revision's benchmark first, built alongside (gemm_prelude.sh).
# Usage (device tool, carry [".device-deps"]): scripts/device/lords_gemm_large.sh. To compare a change with the
# committed tree in one call: `git stash; git archive HEAD -o base.tar; git stash pop` (or `git archive REV`), then
# `BASE_TAR=base.tar scripts/device/lords_gemm_large.sh` (and remove base.tar before committing).
# Results in $OUT: bench-{base,wgmma,bn256,bn128,mma,nf3}.json, cublas.json, bench.log (tests.log on failure).
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/hilo-out}
mkdir -p "$OUT"
source scripts/device/gemm_prelude.sh
HILO_GEMM_BN=256 timeout 120 build-device/tests/hilo_tests --gtest_filter="LordsCuda.BothBatchGemms*" >> "$OUT/tests.log" 2>&1
r=$?
echo "tests HILO_GEMM_BN=256 rc $r" | tee -a "$OUT/bench.log"
[ $r = 0 ] || rc=$r
show_test_failures
batches=${BATCHES:-64,256,1024}
pick() { grep -E "shape| ($(echo "$batches" | tr , '|')) +(blockwise|lords)"; }
bench=build-device/bench/bench_lords_cuda
run() {  # label, json, batches, env...
  local label=$1 json=$2 b=$3
  shift 3
  echo "--- $label" | tee -a "$OUT/bench.log"
  env "$@" timeout 200 $bench --bits 4 --block 64 --batches "$b" --json "$OUT/$json" 2>&1 | pick |
    tee -a "$OUT/bench.log"
}
base=/tmp/base/build-device/bench/bench_lords_cuda
if [ -x $base ]; then
  echo "--- base (BASE_TAR), wgmma (HILO_GEMM_WGMMA=1)" | tee -a "$OUT/bench.log"
  HILO_GEMM_WGMMA=1 timeout 200 $base --bits 4 --block 64 --batches "$batches" --json "$OUT/bench-base.json" 2>&1 | pick |
    tee -a "$OUT/bench.log"
elif [ -n "${BASE_TAR:-}" ]; then
  echo "no base build: $(tail -5 /tmp/base-out/log 2>/dev/null)" | tee -a "$OUT/bench.log"
fi
run "wgmma (the library's own rule, nothing forced)" bench-wgmma.json "$batches"
if [ "${CUBLAS:-1}" = 1 ]; then
  echo "--- cuBLAS bf16 (torch)" | tee -a "$OUT/bench.log"
  HILO_CUBLAS_BATCHES=$batches timeout 200 python3 scripts/device/cublas_baseline.py "$OUT/cublas.json" 2>&1 |
    tee -a "$OUT/bench.log"
fi
if [ "${SANITIZE:-1}" = 1 ]; then
  SANITIZE_FILTER="LordsCuda.BothBatchGemms*" scripts/device/sanitize_chain.sh "$OUT/bench.log" || rc=$?
  scripts/device/sanitize_chain.sh "$OUT/bench.log" || rc=$?
fi
[ "${BN256:-1}" = 1 ] && run "wgmma, HILO_GEMM_BN=256" bench-bn256.json "${BN_BATCHES:-$batches}" HILO_GEMM_BN=256
[ "${BN128:-0}" = 1 ] && run "wgmma, HILO_GEMM_BN=128" bench-bn128.json "${BN_BATCHES:-$batches}" HILO_GEMM_BN=128
[ "${MMA:-1}" = 1 ] && run "mma.sync (HILO_GEMM_WGMMA=0)" bench-mma.json "${MMA_BATCHES:-$batches}" HILO_GEMM_WGMMA=0
if [ "${BITS3:-1}" = 1 ]; then
  echo "--- wgmma, NF3 B=64, batch 1024" | tee -a "$OUT/bench.log"
  timeout 100 $bench --bits 3 --block 64 --batches 1024 --json "$OUT/bench-nf3.json" 2>&1 |
    grep -E "shape| 1024 +(blockwise|lords)" | tee -a "$OUT/bench.log"
fi
[ $rc = 0 ] && rm -f "$OUT/tests.log"
exit $rc
