#!/usr/bin/env bash
# On the GPU machine, with prebuilt binaries (PREBUILT=1, carry ["build-carry"]; scripts/device/prebuild.sh
# hilo_tests bench_lords_cuda): every LoRDS and HISA GPU test (TESTS), the LoRDS benchmark
# (LORDS_ARGS), then per-instruction Nsight Compute profiles (scripts/device/lords_sass_profile.sh) of the
# kernels PROFILES names, each "SHAPE:BATCH:method:kernel-regex[:VAR=VALUE[,VAR=VALUE...]]" (default: the batch-16
# mma.sync GEMM, LoRDS and block-wise, and the batch-1 LoRDS GEMV, on 14336x4096; NF4 B=64), profile i in prof-i/.
# NEW_ENV (e.g. "HILO_GEMM_LATE_FIRST=1 HILO_GEMM_WORKSPACE=0,HILO_PDL=0", variables of one variant joined by
# commas): the LoRDS tests run again with each variant (VARIANT_TESTS, a gtest filter, narrows them; NO_VARIANT_TESTS skips them), and ROUNDS (2)
# rounds time the benchmark without and with each, alternately, and the base build
# build-carry/base_bench_lords_cuda.gz (or .xz, or in sides.txz) where there is one (scripts/device/prebuild_base.sh).
# Output: $OUT/lp.tgz (one tarball: the device tool returns at most 8 files);
# read the CSVs with scripts/ncu_sass_stalls.py and the rounds with scripts/lords_ab_table.py. MEMCHECK (a gtest
# filter): compute-sanitizer memcheck on those tests, once as built and once with each of MEMCHECK_ENV's variants.
# GEOMETRY (shapes): the GEMV's chosen geometry printed (HILO_LORDS_VERBOSE=1) for the base and this build.
# CUBLAS_BATCHES (e.g. "1,4,16"): cuBLAS bf16 on the four Llama shapes at those batches (cublas.json).
# LATE_TESTS, LATE_MEMCHECK, LATE_ENV: a kernel that might hang, tested and timed last (below).
# BNB_BATCHES (e.g. "1,16,1024"): bitsandbytes NF4 (plain and double-quantized, its own dispatch) on the same shapes
# (bnb.json; scripts/device/bnb_baseline.py, bitsandbytes from build-carry/bnb.txz: scripts/device/pack_bnb.sh).
# SIDES (names): more prebuilt benchmarks, build-carry/<name>_bench_lords_cuda.gz or .xz (NAME=<name>
# scripts/device/prebuild_base.sh REV), or all in build-carry/sides.txz (scripts/device/pack_sides.sh), timed in
# every round after the base as side-<name>-<round>.json.
set -uo pipefail
cd "$(dirname "$0")/../.."
final=${OUT:-/tmp/hilo-out}
work=/tmp/lp && rm -rf $work && mkdir -p $work "$final"
trap 'tar -czf "$final/lp.tgz" -C $work .' EXIT
# STEP_RATE=1: also bench_scale_step_rate (the tensor pipe's cycles per step of the weights at 16 and 256 activation
# rows, LoRDS' scale tile on mma.sync or on wgmma; bench/scale_step_rate.cu), first, into step_rate.json
# (prebuild.sh must have built it).
extra_targets=()
[ -n "${STEP_RATE:-}" ] && extra_targets=(bench_scale_step_rate)
scripts/device/build_targets.sh hilo_tests bench_lords_cuda "${extra_targets[@]}" > /dev/null || exit 1
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader | tee $work/gpu.txt
if [ -n "${STEP_RATE:-}" ]; then
  timeout 60 build-device/bench/bench_scale_step_rate --json $work/step_rate.json 2>&1 | tee $work/step_rate.log
fi
# run_tests LABEL LIMIT FILTER LOG [VARIANT [MORE]]: the GPU tests FILTER (under VARIANT's environment assignments,
# joined by commas) with a time limit, into LOG; prints their exit status, how many passed and the failures' lines
# (and those matching the pattern MORE), and returns the status.
run_tests() {
  local label=$1 limit=$2 filter=$3 log=$4 variant=${5:-} more=${6:+|$6} rc
  env ${variant//,/ } timeout "$limit" build-device/tests/hilo_tests --gtest_filter="$filter" > "$log" 2>&1
  rc=$?
  echo "$label rc=$rc $(grep -cE '^\[       OK' "$log") ok"
  grep -E "FAILED|Failure|Expected|Which is$more" "$log" | head -20
  return $rc
}
# run_memcheck LABEL FILTER LOG [VARIANT]: compute-sanitizer memcheck on the tests FILTER, and its summary line.
run_memcheck() {
  local label=$1 filter=$2 log=$3 variant=${4:-}
  timeout 200 env ${variant//,/ } compute-sanitizer --tool memcheck build-device/tests/hilo_tests \
    --gtest_filter="$filter" > "$log" 2>&1
  echo "$label rc=$? $(grep -E 'ERROR SUMMARY' "$log" | tail -1)"
}
# FIRST_TESTS (a gtest filter): run before anything else with a short limit (FIRST_LIMIT, 90 s), and nothing else
# runs if they fail or hang (a new kernel's first call).
if [ -n "${FIRST_TESTS:-}" ]; then
  run_tests "first tests" "${FIRST_LIMIT:-90}" "$FIRST_TESTS" $work/first.log "" error || exit 1
fi
if [ -z "${NO_TESTS:-}" ]; then
  run_tests tests 300 "${TESTS:-LordsCuda*:LordsGpuLayout*:HisaCuda*}" $work/tests.log
fi
if [ -n "${MEMCHECK:-}" ]; then
  v=0
  for variant in "" ${MEMCHECK_ENV:-}; do
    run_memcheck "memcheck ${variant:-as built}" "$MEMCHECK" $work/memcheck$v.log "$variant"
    v=$((v + 1))
  done
fi
v=0
for variant in ${NEW_ENV:-}; do
  v=$((v + 1))
  [ -n "${NO_VARIANT_TESTS:-}" ] && continue
  run_tests "tests with $variant" 300 "${VARIANT_TESTS:-LordsCuda*:LordsGpuLayout*}" $work/tests-env$v.log "$variant"
done
# A prebuilt benchmark, build-carry/<name>_bench_lords_cuda.gz, or .xz, or inside build-carry/sides.txz
# (scripts/device/pack_sides.sh), unpacked to /tmp/<name>_bench_lords_cuda (python's lzma: the device may lack xz).
unpack() {
  local packed=build-carry/$1_bench_lords_cuda
  python3 - "$1" "$packed" << 'PY' && chmod +x "/tmp/$1_bench_lords_cuda"
import gzip, lzma, os, shutil, sys, tarfile
name, packed = sys.argv[1], sys.argv[2]
dest = f"/tmp/{name}_bench_lords_cuda"
if os.path.exists("build-carry/sides.txz"):
    with tarfile.open("build-carry/sides.txz") as t:
        member = next((m for m in t.getmembers() if os.path.basename(m.name) == f"{name}_bench_lords_cuda"), None)
        if member:
            with t.extractfile(member) as src, open(dest, "wb") as out:
                shutil.copyfileobj(src, out)
            sys.exit(0)
for ext, opener in ((".xz", lzma.open), (".gz", gzip.open)):
    if os.path.exists(packed + ext):
        with opener(packed + ext) as src, open(dest, "wb") as out:
            shutil.copyfileobj(src, out)
        sys.exit(0)
sys.exit(1)
PY
}
base=""
unpack base && base=/tmp/base_bench_lords_cuda
for side in ${SIDES:-}; do
  unpack "$side" || { echo "no prebuilt benchmark named $side in build-carry"; exit 1; }
done
# GEOMETRY (e.g. "14336x4096,4096x14336"): the batch-1 LoRDS GEMV's chosen geometry on those shapes
# (HILO_LORDS_VERBOSE=1), base build and this one.
if [ -n "${GEOMETRY:-}" ]; then
  for b in $base build-device/bench/bench_lords_cuda; do
    echo "=== geometry: $b"
    HILO_LORDS_VERBOSE=1 timeout 60 $b --bits 4 --block 64 --batches 1 --methods lords --shapes "$GEOMETRY" 2>&1 |
      grep -a -E "^lords_gemv|candidate" | head -60
  done 2>&1 | tee $work/geometry.log
fi
read -r -a lords_args <<< "${LORDS_ARGS:---bits 4 --block 64 --batches 1,16 --methods lords,blockwise}"
# One round of the benchmark with each variant (environment assignments joined by commas) into envV-ROUND.json, V
# counting on from the second argument: time_variants ROUND FIRST LABEL VARIANT...
time_variants() {
  local round=$1 v=$2 label=$3 variant
  shift 3
  for variant in "$@"; do
    v=$((v + 1))
    echo "=== round $round with $variant$label"
    env ${variant//,/ } timeout 150 build-device/bench/bench_lords_cuda "${lords_args[@]}" \
      --json $work/env$v-$round.json 2>&1 | tail -n +2
  done
}
for round in $(seq 1 "${ROUNDS:-2}"); do
  if [ -n "$base" ]; then
    echo "=== round $round base $(cat build-carry/BASE_REVISION 2>/dev/null)"
    timeout 150 $base "${lords_args[@]}" --json $work/base-$round.json 2>&1 | tail -n +2
  fi
  for side in ${SIDES:-}; do
    echo "=== round $round $side $(cat "build-carry/${side^^}_REVISION" 2>/dev/null)"
    timeout 150 "/tmp/${side}_bench_lords_cuda" "${lords_args[@]}" --json "$work/side-$side-$round.json" 2>&1 |
      tail -n +2
  done
  echo "=== round $round"
  timeout 150 build-device/bench/bench_lords_cuda "${lords_args[@]}" --json $work/new-$round.json 2>&1 | tail -n +2
  time_variants "$round" 0 "" ${NEW_ENV:-}
done
if [ -n "${CUBLAS_BATCHES:-}" ]; then
  HILO_CUBLAS_BATCHES=$CUBLAS_BATCHES timeout 120 python3 scripts/device/cublas_baseline.py $work/cublas.json \
    > $work/cublas.log 2>&1
  tail -8 $work/cublas.log
fi
if [ -n "${BNB_BATCHES:-}" ]; then
  HILO_BNB_BATCHES=$BNB_BATCHES timeout 300 python3 scripts/device/bnb_baseline.py $work/bnb.json \
    > $work/bnb.log 2>&1
  echo "bnb rc=$?"
  tail -4 $work/bnb.log
fi
# LATE_TESTS (a gtest filter): a new kernel that might hang, tested only once everything above has its results
# (timeout LATE_LIMIT, 120 s); if they pass, compute-sanitizer memcheck on LATE_MEMCHECK (a filter), and ROUNDS rounds
# of the benchmark with each LATE_ENV variant, numbered after NEW_ENV's (envV-N.json, V continuing).
if [ -n "${LATE_TESTS:-}" ]; then
  if run_tests "late tests" "${LATE_LIMIT:-120}" "$LATE_TESTS" $work/late.log; then
    [ -n "${LATE_MEMCHECK:-}" ] && run_memcheck "late memcheck" "$LATE_MEMCHECK" $work/memcheck-late.log
    v0=$(wc -w <<< "${NEW_ENV:-}")
    for round in $(seq 1 "${ROUNDS:-2}"); do
      time_variants "$round" "$v0" " (late)" ${LATE_ENV:-}
    done
  fi
fi
i=0
for p in ${PROFILES-14336x4096:16:lords:mma_gemm 14336x4096:16:blockwise:mma_gemm 14336x4096:1:lords:lords_gemv}; do
  IFS=: read -r shape batch method kernel var <<< "$p"
  i=$((i + 1))
  OUT=$work/prof-$i timeout 150 env ${var//,/ } SHAPE=$shape BATCH=$batch PAIRS="$method:$kernel" \
    scripts/device/lords_sass_profile.sh > /dev/null 2>&1
  echo "=== profile $i: $p"
  grep -E "==ERROR==|Duration|Executed Ipc A|DRAM Throughput|L2 Cache Throughput|Memory Throughput|Registers Per|Achieved Occ|Shared Memory  |L1/TEX Hit|Block Limit" \
    $work/prof-$i/profile.log 2>/dev/null | head -16
done
