#!/usr/bin/env bash
# Configures and builds hilo. Usage: scripts/build.sh [BUILD_DIR] [extra cmake args...]
# CUDA sources build when nvcc is found (on PATH or in /usr/local/cuda/bin).
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${1:-build}
shift || true
if ! command -v nvcc >/dev/null 2>&1 && [ -x /usr/local/cuda/bin/nvcc ]; then
  export PATH=/usr/local/cuda/bin:$PATH
fi
# The Python extension is built for the python3 on PATH (the one the tests run with).
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=Release -DPython_EXECUTABLE="$(command -v python3)" "$@" >/dev/null
cmake --build "$build_dir" -j "$(nproc)"
