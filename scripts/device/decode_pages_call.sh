#!/usr/bin/env bash
# On the GPU machine, with prebuilt binaries (PREBUILT=1, carry ["build-carry"]: prebuild.sh hilo_tests
# bench_hisa_cuda bench_lords_cuda, and NAME=mid prebuild_base.sh REV bench_hisa_cuda): the tenth session's check of
# the decode changes in one call - every HISA GPU test, memcheck / racecheck on the top-k's cluster paths and the
# decode tests, a decode / top-k A/B of build-carry/mid_bench_hisa_cuda.gz against this tree (SIDES, ROUNDS 3), the
# decode table of the issue (this tree), then Nsight Compute per-instruction profiles of the LoRDS kernels the notes
# ask for (batch 1 GEMV and batch 16 mma.sync GEMM on 14336x4096, NF4 B=64; NO_LORDS=1 skips them). SANITIZERS
# picks the compute-sanitizer tools (default memcheck racecheck).
# Output: $OUT/x.tgz.
set -uo pipefail
cd "$(dirname "$0")/../.."
final=${OUT:-/tmp/hilo-out}
work=/tmp/x && rm -rf $work && mkdir -p $work "$final"
trap 'tar -czf "$final/x.tgz" -C $work .' EXIT
scripts/device/build_targets.sh hilo_tests bench_hisa_cuda bench_lords_cuda > /dev/null || exit 1
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader | tee $work/gpu.txt
timeout 200 build-device/tests/hilo_tests --gtest_filter='HisaCuda*' > $work/tests.log 2>&1
echo "tests rc=$? $(grep -cE '^\[       OK' $work/tests.log) ok"
grep -E "FAILED|Failure" $work/tests.log | head
filter='HisaCuda.TopkRowsWithCrowdedBinsEqualCpu:HisaCuda.DecodeMatchesCpuAndPooledCacheIsExact:HisaCuda.UncheckedDecodeIsolatesBadRequests'
for t in ${SANITIZERS-memcheck racecheck}; do
  timeout 150 compute-sanitizer --tool $t build-device/tests/hilo_tests --gtest_filter="$filter" > $work/$t.log 2>&1
  echo "$t rc=$? $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' $work/$t.log | tail -1)"
done
SIDES=${SIDES:-mid new} ROUNDS=${ROUNDS:-3} OUT=$work \
  AB_ARGS="--parts decode,topk --batches 64 --decode-contexts 65536 --topk-shapes 64x65536,64x131072 --topk-clusters 4 --repeat 20" \
  scripts/device/decode_ab.sh | grep -E "^##|^decode|default|cluster of"
timeout 150 build-device/bench/bench_hisa_cuda --parts decode --batches 1,8,64,128 --decode-contexts 16384,65536,131072 \
  --repeat 5 --json $work/decode-table.json > $work/decode-table.log 2>&1
grep -E "^decode" $work/decode-table.log
tar -czf "$final/x.tgz" -C $work .  # what is done so far, in case the profiles run past the call's limit
[ -n "${NO_LORDS:-}" ] && exit 0
OUT=$work/lords-b1 timeout 120 env SHAPE=14336x4096 BATCH=1 scripts/device/lords_sass_profile.sh > /dev/null 2>&1
OUT=$work/lords-b16 timeout 120 env SHAPE=14336x4096 BATCH=16 PAIRS="lords:mma_gemm blockwise:mma_gemm" \
  scripts/device/lords_sass_profile.sh > /dev/null 2>&1
grep -E "^===|Duration|Executed Ipc A|DRAM Throughput|Registers Per" $work/lords-b*/profile.log | head -24
