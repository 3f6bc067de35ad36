#!/usr/bin/env bash
# On the GPU machine, with prebuilt binaries (PREBUILT=1, carry ["build-carry"]; see scripts/device/prebuild.sh):
# the checks a session owes without building - HISA GPU tests plus memcheck on MEMCHECK_FILTER, the LoRDS GPU tests,
# bench_dsmem_store, and (BATCHES, default 1,16) the LoRDS benchmark with cuBLAS bf16 in the same call.
# Everything goes to one tarball, $OUT/results.tgz (the device tool returns at most 8 files).
# Usage: PREBUILT=1 scripts/device/prebuilt_checks.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/hilo-out}
work=/tmp/checks && rm -rf $work && mkdir -p $work/hisa $work/lords
scripts/device/build_targets.sh hilo_tests bench_hisa_cuda bench_lords_cuda bench_dsmem_store || exit 1
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader | tee $work/gpu.txt
SANITIZERS=memcheck MEMCHECK_FILTER=${MEMCHECK_FILTER:-HisaCuda.TopkTinyRowsEqualCpu} \
  BENCH_ARGS="--parts topk --topk-shapes 64x8192,64x131072" OUT=$work/hisa scripts/device/hisa_gpu.sh
echo "hisa rc=$?"
timeout 300 build-device/tests/hilo_tests --gtest_filter='LordsCuda*:LordsGpuLayout*' > $work/lords/tests.log 2>&1
echo "lords tests rc=$? $(grep -cE '^\[       OK' $work/lords/tests.log) ok"
grep -E "FAILED|Failure|Expected|Which" $work/lords/tests.log | head -20
timeout 120 build-device/bench/bench_dsmem_store --json $work/dsmem.json 2>&1 | tee $work/dsmem.log
bench=build-device/bench/bench_lords_cuda
timeout 200 $bench --bits 4 --block 64 --batches "${BATCHES:-1,16}" --json $work/lords/lords.json 2>&1 | tee $work/lords/bench.log
HILO_CUBLAS_BATCHES=${BATCHES:-1,16} timeout 120 python3 scripts/device/cublas_baseline.py $work/lords/cublas.json > $work/lords/cublas.log 2>&1
tail -12 $work/lords/cublas.log
tar -czf "$OUT/results.tgz" -C $work .
