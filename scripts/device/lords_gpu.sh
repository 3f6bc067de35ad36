#!/usr/bin/env bash
# On the GPU machine: build the tests and the LoRDS GPU benchmark (carried deps, see build_and_test.sh), run the
# LoRDS GPU tests (and compute-sanitizer memcheck / racecheck / synccheck on them), the benchmark at 4 and 3 bits, and cuBLAS
# bf16 on the same shapes in the same run. Usage (device tool, carry [".device-deps"]): scripts/device/lords_gpu.sh
# [quick] (SANITIZERS="" skips compute-sanitizer; HILO_MMA_MT=2 picks two row tiles per warp). Results in $OUT: lords-cuda-*.json, cublas-baseline.json, logs.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/hilo-out}
mkdir -p "$OUT"
scripts/device/build_targets.sh hilo_tests bench_lords_cuda || exit 1
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv,noheader | tee "$OUT/gpu.txt"
tests='LordsCuda*:LordsGpuLayout*'
build-device/tests/hilo_tests --gtest_filter="$tests" > "$OUT/test.log" 2>&1
# (test logs and sanitizer logs are summarised here; $OUT keeps at most 8 files for the device tool)
rc=$?
grep -E "OK|FAILED|Failure|Expected|Which|near|seed|rank" "$OUT/test.log" | head -40
# The GEMV's multi-pass path (batches above its pass width), which the GEMM now replaces by default.
HILO_LORDS_GEMM=0 build-device/tests/hilo_tests --gtest_filter='LordsCuda.Matmul*:LordsCuda.Every*' \
  > "$OUT/test-gemv.log" 2>&1 || rc=1
echo "gemv passes: $(grep -cE '^\[       OK' "$OUT/test-gemv.log") ok, $(grep -c FAILED "$OUT/test-gemv.log") failed lines"
for tool in ${SANITIZERS-memcheck racecheck synccheck}; do
  timeout 150 compute-sanitizer --tool $tool --error-exitcode 9 build-device/tests/hilo_tests \
    --gtest_filter='LordsCuda.EveryRankWidthAndActivationRange' > "$OUT/$tool.log" 2>&1
  echo "$tool rc=$? $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$OUT/$tool.log" | tail -1)"
done
bench=build-device/bench/bench_lords_cuda
timeout 200 $bench --bits 4 --block 64 --batches 1,4,16,64,256,1024 --json "$OUT/lords-cuda-nf4-b64.json" 2>&1 |
  tee "$OUT/bench.log"
# A/B of the GEMV/GEMM switch: the GEMV's passes at the batches around it, same process type and card.
HILO_LORDS_GEMM=0 timeout 100 $bench --bits 4 --block 64 --batches 4,16,64 --json "$OUT/lords-cuda-nf4-b64-gemv.json" \
  2>&1 | tee -a "$OUT/bench.log"
if [ "${1:-}" != quick ]; then
  timeout 150 $bench --bits 3 --block 64 --batches 1,16,256,1024 --json "$OUT/lords-cuda-nf3-b64.json" 2>&1 |
    tee -a "$OUT/bench.log"
  timeout 100 $bench --bits 4 --block 128 --batches 1,16,1024 --json "$OUT/lords-cuda-nf4-b128.json" 2>&1 |
    tee -a "$OUT/bench.log"
fi
timeout 90 python3 scripts/device/cublas_baseline.py "$OUT/cublas-baseline.json" > "$OUT/cublas.log" 2>&1
grep -E "copy|\| (4096x4096|14336x4096) \| (1|16|256|1024) \|" "$OUT/cublas.log"
# The device tool brings back at most 8 files: the logs above are summarised on stdout, the tables are in bench.log.
rm -f "$OUT"/test*.log "$OUT"/memcheck.log "$OUT"/racecheck.log "$OUT/gpu.txt" "$OUT"/lords-cuda-*-gemv.json
exit $rc
