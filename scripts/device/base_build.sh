#!/usr/bin/env bash
# Sourced by the device scripts that compare against a base revision: when BASE_TAR names a `git archive` of it,
# unpacks it to /tmp/base and builds its bench_lords_cuda there in the background (with this tree's carried
# dependencies; log in /tmp/base-out/log), so that it compiles alongside this tree's build. The caller `wait`s before
# running /tmp/base/build-device/bench/bench_lords_cuda. Usage: source scripts/device/base_build.sh
if [ -n "${BASE_TAR:-}" ]; then
  rm -rf /tmp/base && mkdir -p /tmp/base /tmp/base-out && tar -xf "$BASE_TAR" -C /tmp/base &&
    ln -s "$PWD/.device-deps" /tmp/base/.device-deps &&
    (OUT=/tmp/base-out /tmp/base/scripts/device/build_targets.sh bench_lords_cuda > /tmp/base-out/log 2>&1) &
fi
