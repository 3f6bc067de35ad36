#!/usr/bin/env bash
# On the GPU machine, with prebuilt binaries (PREBUILT=1, carry ["build-carry"]; scripts/device/prebuild.sh
# hilo_tests bench_lords_cuda bench_hisa_cuda): every LoRDS and HISA GPU test (TESTS), the LoRDS benchmark
# (LORDS_ARGS), then per-instruction Nsight Compute profiles (scripts/device/lords_sass_profile.sh) of the
# kernels PROFILES names, each "SHAPE:BATCH:method:kernel-regex[:VAR=VALUE]" (default: the batch-16 mma.sync GEMM,
# LoRDS and block-wise, and the batch-1 LoRDS GEMV, on 14336x4096; NF4 B=64), profile i in prof-i/. NEW_ENV (e.g.
# "HILO_GEMM_OCC2=1"): the LoRDS tests run again with it, and ROUNDS (2) rounds time the benchmark without and with
# it, alternately. Output: $OUT/lp.tgz (one tarball: the device tool returns at most 8 files); read the CSVs with
# scripts/ncu_sass_stalls.py.
set -uo pipefail
cd "$(dirname "$0")/../.."
final=${OUT:-/tmp/hilo-out}
work=/tmp/lp && rm -rf $work && mkdir -p $work "$final"
trap 'tar -czf "$final/lp.tgz" -C $work .' EXIT
scripts/device/build_targets.sh hilo_tests bench_lords_cuda bench_hisa_cuda > /dev/null || exit 1
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader | tee $work/gpu.txt
if [ -z "${NO_TESTS:-}" ]; then
  timeout 300 build-device/tests/hilo_tests --gtest_filter="${TESTS:-LordsCuda*:LordsGpuLayout*:HisaCuda*}" \
    > $work/tests.log 2>&1
  echo "tests rc=$? $(grep -cE '^\[       OK' $work/tests.log) ok"
  grep -E "FAILED|Failure|Expected|Which is" $work/tests.log | head -20
fi
if [ -n "${NEW_ENV:-}" ]; then
  env $NEW_ENV timeout 300 build-device/tests/hilo_tests --gtest_filter='LordsCuda*:LordsGpuLayout*' \
    > $work/tests-env.log 2>&1
  echo "tests with $NEW_ENV rc=$? $(grep -cE '^\[       OK' $work/tests-env.log) ok"
  grep -E "FAILED|Failure|Expected|Which is" $work/tests-env.log | head -20
fi
read -r -a lords_args <<< "${LORDS_ARGS:---bits 4 --block 64 --batches 1,16 --methods lords,blockwise}"
for round in $(seq 1 "${ROUNDS:-2}"); do
  echo "=== round $round"
  timeout 150 build-device/bench/bench_lords_cuda "${lords_args[@]}" --json $work/lords-$round.json 2>&1 | tail -n +2
  [ -n "${NEW_ENV:-}" ] || continue
  echo "=== round $round with $NEW_ENV"
  env $NEW_ENV timeout 150 build-device/bench/bench_lords_cuda "${lords_args[@]}" --json $work/env-$round.json 2>&1 |
    tail -n +2
done
i=0
for p in ${PROFILES-14336x4096:16:lords:mma_gemm 14336x4096:16:blockwise:mma_gemm 14336x4096:1:lords:lords_gemv}; do
  IFS=: read -r shape batch method kernel var <<< "$p"
  i=$((i + 1))
  OUT=$work/prof-$i timeout 150 env $var SHAPE=$shape BATCH=$batch PAIRS="$method:$kernel" \
    scripts/device/lords_sass_profile.sh > /dev/null 2>&1
  echo "=== profile $i: $p"
  grep -E "Duration|Executed Ipc A|DRAM Throughput|Registers Per|Achieved Occ|Shared Memory  |L1/TEX Hit|Block Limit" \
    $work/prof-$i/profile.log 2>/dev/null | head -14
done
