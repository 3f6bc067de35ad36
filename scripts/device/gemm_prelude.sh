#!/usr/bin/env bash
# Sourced by the GEMM device scripts (lords_gemm_small.sh, lords_gemm_large.sh) from the repository root, with OUT
# set: builds hilo_tests and bench_lords_cuda (exits when that fails) and, alongside, when BASE_TAR names a
# `git archive` of a base revision, that revision's bench_lords_cuda in /tmp/base (log: /tmp/base-out/log); writes
# the card to $OUT/bench.log; runs the LoRDS GPU tests into $OUT/tests.log and sets rc to their status. The caller
# may add test runs to tests.log, then prints what failed with show_test_failures. TESTS_FILTER / TESTS_TIMEOUT (s)
# pick the tests and cap their run (default: the LoRDS GPU and layout tests, 300).
if [ -n "${BASE_TAR:-}" ]; then
  rm -rf /tmp/base && mkdir -p /tmp/base /tmp/base-out && tar -xf "$BASE_TAR" -C /tmp/base &&
    ln -s "$PWD/.device-deps" /tmp/base/.device-deps &&
    (PREBUILT=0 OUT=/tmp/base-out /tmp/base/scripts/device/build_targets.sh bench_lords_cuda > /tmp/base-out/log 2>&1) &
fi
scripts/device/build_targets.sh hilo_tests bench_lords_cuda || exit 1
wait
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv,noheader | tee "$OUT/bench.log"
timeout "${TESTS_TIMEOUT:-300}" build-device/tests/hilo_tests --gtest_filter="${TESTS_FILTER:-LordsCuda*:LordsGpuLayout*}" > "$OUT/tests.log" 2>&1
rc=$?
echo "tests rc $rc" | tee -a "$OUT/bench.log"
show_test_failures() {
  grep -E "^\[  (PASSED|FAILED)|FAILED  \]|Failure|exception|Expected|Which|batch" "$OUT/tests.log" | head -30
}
