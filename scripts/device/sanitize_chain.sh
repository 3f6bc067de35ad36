#!/usr/bin/env bash
# compute-sanitizer (the tools in SANITIZERS, default "memcheck racecheck synccheck"; synccheck found the wgmma GEMM's
# split __syncthreads in 2026-12-06's TMA version) over the LoRDS back-to-back chain test of build-device, which runs
# the batch-1 GEMVs and the small-batch GEMM on one stream. Prints one summary line per tool
# (appended to LOG as well) and the first reports of a failing tool; exits non-zero when any tool found errors.
# SANITIZE_FILTER (a gtest filter, default the chain) runs other tests under the same tools.
# Usage, from the device scripts after the build: scripts/device/sanitize_chain.sh LOG
set -uo pipefail
cd "$(dirname "$0")/../.."
log=${1:-/dev/null}
rc=0
for tool in ${SANITIZERS-memcheck racecheck synccheck}; do
  out=$(mktemp)
  timeout 150 compute-sanitizer --tool "$tool" --error-exitcode 9 build-device/tests/hilo_tests \
    --gtest_filter="${SANITIZE_FILTER:-LordsCuda.BackToBack*}" > "$out" 2>&1
  r=$?
  echo "$tool ${SANITIZE_FILTER:-chain} rc=$r $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$out" | tail -1)" | tee -a "$log"
  [ $r = 0 ] || { rc=$r; grep -E "=========" "$out" | head -20; }
  rm -f "$out"
done
exit $rc
