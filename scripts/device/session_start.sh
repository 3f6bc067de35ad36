#!/usr/bin/env bash
# On the GPU machine, with prebuilt binaries (PREBUILT=1, carry ["build-carry"]; scripts/device/prebuild.sh
# hilo_tests bench_lords_cuda bench_hisa_cuda): a session's first call. Every LoRDS and HISA GPU test, the LoRDS
# batch-1 benchmark (LORDS_ARGS), the flat / HISA decode benchmark (DECODE_ARGS) and, unless NO_NCU is set,
# Nsight Compute counters of the decode call's scoring and top-k kernels (scripts/device/ncu_sass.sh).
# Output: $OUT/results.tgz with tests.log, lords.json / lords.log, decode.json / decode.log, ncu/ (one tarball: the
# device tool returns at most 8 files).
set -uo pipefail
cd "$(dirname "$0")/../.."
final=${OUT:-/tmp/hilo-out}
OUT=/tmp/session-start && rm -rf $OUT && mkdir -p "$OUT/ncu" "$final"
trap 'tar -czf "$final/results.tgz" -C "$OUT" .' EXIT
scripts/device/build_targets.sh hilo_tests bench_lords_cuda bench_hisa_cuda > /dev/null || exit 1
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader | tee "$OUT/gpu.txt"
timeout 300 build-device/tests/hilo_tests --gtest_filter="${TESTS:-LordsCuda*:LordsGpuLayout*:HisaCuda*}" \
  > "$OUT/tests.log" 2>&1
echo "tests rc=$? $(grep -cE '^\[       OK' "$OUT/tests.log") ok"
grep -E "FAILED|Failure|Expected|Which is" "$OUT/tests.log" | head -20
read -r -a lords_args <<< "${LORDS_ARGS:---bits 3 --block 64 --batches 1 --methods lords}"
timeout 120 build-device/bench/bench_lords_cuda "${lords_args[@]}" --json "$OUT/lords.json" > "$OUT/lords.log" 2>&1
tail -6 "$OUT/lords.log"
read -r -a decode_args <<< "${DECODE_ARGS:---parts decode --batches 64,128 --decode-contexts 65536 --repeat 9}"
timeout 200 build-device/bench/bench_hisa_cuda "${decode_args[@]}" --json "$OUT/decode.json" 2>&1 | tee "$OUT/decode.log" |
  grep -E "^decode|graph|Card|copy"
[ -n "${NO_NCU:-}" ] && exit 0
SKIP=0 KERNELS="score_decode_kernel topk_kernel" OUT="$OUT/ncu" scripts/device/ncu_sass.sh \
  build-device/bench/bench_hisa_cuda --parts decode --batches 64 --decode-contexts 65536 --repeat 1
