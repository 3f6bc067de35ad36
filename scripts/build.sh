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
# Ninja for a new build directory: unlike make it compiles a target's objects while the libraries they link are still
# building, which keeps both cores busy (CI builds from scratch). An existing directory keeps its generator.
generator=()
if [ ! -f "$build_dir/CMakeCache.txt" ] && command -v ninja >/dev/null 2>&1; then
  generator=(-G Ninja)
fi
# ccache where installed (scripts/install-deps.sh installs it): rebuilds are quicker, and CI's `pip install .` of the
# same sources and flags finds the objects of this build.
launcher=()
if command -v ccache >/dev/null 2>&1; then
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_CUDA_COMPILER_LAUNCHER=ccache)
fi
# The Python extension is built for the python3 on PATH (the one the tests run with).
cmake -S . -B "$build_dir" "${generator[@]}" "${launcher[@]}" -DCMAKE_BUILD_TYPE=Release \
  -DPython_EXECUTABLE="$(command -v python3)" "$@" >/dev/null
cmake --build "$build_dir" -j "$(nproc)"
