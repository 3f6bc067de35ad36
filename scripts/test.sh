#!/usr/bin/env bash
# Installs dependencies, builds and runs every test (C++ GoogleTest suite, Python peers and CLI tests via ctest).
# With --sanitize: the same in build-asan with AddressSanitizer + UndefinedBehaviorSanitizer (CPU only, -O1), less the
# four long numeric checks (HILO_SKIP_HEAVY).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
if [ "${1:-}" = "--sanitize" ]; then
  scripts/build.sh build-asan -DHILO_SANITIZE=ON -DHILO_ENABLE_CUDA=OFF -DHILO_BUILD_BENCH=OFF
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  export HILO_SKIP_HEAVY=1  # the long numeric checks run in the plain build (tests/test_util.hpp says which and why)
  cd build-asan
else
  scripts/build.sh build
  cd build
fi
ctest --output-on-failure -j "$(nproc)"
