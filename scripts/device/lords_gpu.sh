#!/usr/bin/env bash
# On the GPU machine: build the tests and the LoRDS GPU benchmark (carried deps, see build_and_test.sh), run the
# LoRDS GPU tests (and compute-sanitizer memcheck on them), the benchmark, and cuBLAS bf16 on the same shapes in the
# same run. Usage (device tool, carry [".device-deps"]): scripts/device/lords_gpu.sh. Results in $OUT.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/hilo-out}
mkdir -p "$OUT"
deps=$PWD/.device-deps
cmake -S . -B build-device -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$deps/usr" -DHILO_FMT_HEADER_ONLY=ON \
  -DHILO_GTEST_SOURCE="$deps/usr/src/googletest" -DCMAKE_CUDA_ARCHITECTURES=90a > "$OUT/configure.log" 2>&1 ||
  { tail -30 "$OUT/configure.log"; exit 1; }
cmake --build build-device -j "$(nproc)" --target hilo_tests bench_lords_cuda > "$OUT/build.log" 2>&1 ||
  { grep -E "error" -A3 "$OUT/build.log" | head -40; exit 1; }
build-device/tests/hilo_tests --gtest_filter='LordsCuda*' > "$OUT/test.log" 2>&1
rc=$?
grep -E "OK|FAILED|Failure|Expected|Which|near|seed" "$OUT/test.log" | head -20
timeout 200 compute-sanitizer --tool memcheck --error-exitcode 9 build-device/tests/hilo_tests \
  --gtest_filter='LordsCuda*' > "$OUT/memcheck.log" 2>&1
echo "memcheck rc=$? $(grep -E 'ERROR SUMMARY' "$OUT/memcheck.log" | tail -1)"
timeout 120 build-device/bench/bench_lords_cuda --bits 4 --block 64 --batches 1,16,64 --json "$OUT/lords-cuda.json" \
  2>&1 | tee "$OUT/bench.log"
timeout 60 python3 scripts/device/cublas_baseline.py "$OUT/cublas-baseline.json" > "$OUT/cublas.log" 2>&1
grep -E "copy|\| (4096x4096|14336x4096) \| (1|16|64) \|" "$OUT/cublas.log"
exit $rc
