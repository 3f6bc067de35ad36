#!/usr/bin/env bash
# The main job on its built-in defaults: installs dependencies, builds, and runs `hilo hisa` (flat DSA indexer vs
# HISA on generated data: time, speedup, overlap). Extra arguments go to `hilo hisa`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh build
build/cli/hilo hisa "$@"
