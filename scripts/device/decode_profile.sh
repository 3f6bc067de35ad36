#!/usr/bin/env bash
# On the GPU machine: where a decode call's time goes. Runs the GPU decode/top-k tests, then the decode benchmark
# for a few shapes, then Nsight Compute's per-kernel GPU durations of the same calls (kernel time vs call time shows
# the host-side and synchronisation cost). Usage (device tool, carry [".device-deps"]):
#   SHAPES="65536:64 16384:1" scripts/device/decode_profile.sh
# TESTS: gtest filter; SANITIZE: a gtest filter to run under memcheck and racecheck; NO_NCU=1: timings only;
# SECTIONS=CTX:BATCH: Nsight Compute sections of the decode scoring kernels.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/hilo-out}
mkdir -p "$OUT"
scripts/device/build_targets.sh hilo_tests bench_hisa_cuda || exit 1
nvidia-smi --query-gpu=name,clocks.max.sm,memory.total --format=csv,noheader | tee "$OUT/card.txt"
timeout 200 build-device/tests/hilo_tests --gtest_filter="${TESTS:-HisaCuda*Decode*:Topk*}" > "$OUT/tests.log" 2>&1
echo "tests rc $?"; grep -E "^\[  (PASSED|FAILED)|FAILED  \]" "$OUT/tests.log" | head -20
if [ -n "${SANITIZE:-}" ]; then  # memcheck and racecheck on the given tests
  for tool in memcheck racecheck; do
    timeout 240 compute-sanitizer --tool $tool build-device/tests/hilo_tests --gtest_filter="$SANITIZE" \
      > "$OUT/sanitize-$tool.log" 2>&1
    echo "$tool rc $?: $(grep -E "ERROR SUMMARY|RACECHECK SUMMARY" "$OUT/sanitize-$tool.log" | tail -1)"
  done
fi
for shape in ${SHAPES:-65536:64 16384:1}; do
  ctx=${shape%%:*} batch=${shape##*:}
  build-device/bench/bench_hisa_cuda --parts decode --decode-contexts "$ctx" --batches "$batch" --repeat 9 \
    ${BENCH_ARGS:-} 2>&1 | tail -4 | tee -a "$OUT/bench.txt"
  [ -n "${NO_NCU:-}" ] && continue
  timeout 240 ncu --metrics gpu__time_duration.sum --print-summary per-kernel \
    build-device/bench/bench_hisa_cuda --parts decode --decode-contexts "$ctx" --batches "$batch" --repeat 1 \
    ${BENCH_ARGS:-} > "$OUT/ncu-decode-$ctx-$batch.txt" 2>&1
  echo "== ncu $ctx x $batch: kernel, invocations, mean duration"
  awk '/^  [a-zA-Z_].*\(/ {name=$1} /gpu__time_duration.sum/ {print name, $0}' "$OUT/ncu-decode-$ctx-$batch.txt" |
    awk '{print $1, $(NF-2), $(NF-1), $NF}' | head -40
done
if [ -n "${SECTIONS:-}" ]; then  # why the decode scoring kernels run below bandwidth: one launch each, full sections
  ctx=${SECTIONS%%:*} batch=${SECTIONS##*:}
  for kernel in score_decode_kernel token_scores_decode_kernel; do
    timeout 200 ncu --kernel-name regex:$kernel --launch-skip 1 --launch-count 1 --section SpeedOfLight \
      --section MemoryWorkloadAnalysis --section Occupancy --section WarpStateStats --section LaunchStats \
      build-device/bench/bench_hisa_cuda --parts decode --decode-contexts "$ctx" --batches "$batch" --repeat 3 \
      > "$OUT/ncu-$kernel.txt" 2>&1
    echo "== $kernel ($ctx x $batch)"
    grep -E "Duration|DRAM Throughput|Memory Throughput|L2 Hit|Achieved Occupancy|Theoretical Occupancy|Block Limit|Registers Per|Stall|Warp Cycles Per Issued|Grid Size|Waves" \
      "$OUT/ncu-$kernel.txt" | head -24
  done
fi
