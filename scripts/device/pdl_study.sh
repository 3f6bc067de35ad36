#!/usr/bin/env bash
# On the GPU machine: programmatic dependent launch (HILO_PDL; the HISA switch cuda_detail::early_launch()) across
# both methods in one call. Builds; runs the HISA decode / top-k GPU tests and the LoRDS back-to-back chain test;
# HISA decode at batch 64 and 128 x 64K (the benchmark measures plain launches in the same process); the LoRDS /
# block-wise batch-1 benchmark with and without PDL, each row with its streaming floor; cuBLAS bf16.
# Usage (device tool, carry [".device-deps"]): scripts/device/pdl_study.sh. Results in $OUT: hisa-decode.json,
# lords-pdl.json, lords-no-pdl.json, cublas-baseline.json, study.log.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/hilo-out}
mkdir -p "$OUT"
scripts/device/build_targets.sh hilo_tests bench_hisa_cuda bench_lords_cuda || exit 1
log="$OUT/study.log"
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader | tee "$log"
timeout 200 build-device/tests/hilo_tests \
  --gtest_filter='HisaCuda.Decode*:HisaCuda.Unchecked*:HisaCuda.Rejected*:HisaCuda.Topk*:LordsCuda.BackToBack*' > "$OUT/tests.log" 2>&1
rc=$?
grep -E "^\[  (PASSED|FAILED)|FAILED  \]|Failure|exception" "$OUT/tests.log" | tee -a "$log"
timeout 200 build-device/bench/bench_hisa_cuda --parts decode --batches 64,128 --decode-contexts 65536 --repeat 7 \
  --json "$OUT/hisa-decode.json" 2>&1 | tee -a "$log"
bench=build-device/bench/bench_lords_cuda
timeout 150 $bench --bits 4 --block 64 --batches 1 --json "$OUT/lords-pdl.json" 2>&1 | tee -a "$log"
echo "--- HILO_PDL=0" | tee -a "$log"
HILO_PDL=0 timeout 150 $bench --bits 4 --block 64 --batches 1 --json "$OUT/lords-no-pdl.json" 2>&1 | tail -9 | tee -a "$log"
timeout 120 python3 scripts/device/cublas_baseline.py "$OUT/cublas-baseline.json" > "$OUT/cublas.log" 2>&1
grep -E "copy|\| [0-9]+x[0-9]+ \| 1 \|" "$OUT/cublas.log" | tee -a "$log"
rm -f "$OUT/cublas.log"
[ $rc = 0 ] && rm -f "$OUT/tests.log"
exit $rc
