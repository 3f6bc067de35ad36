#!/usr/bin/env bash
# On the GPU machine: the same HISA benchmark on a base revision and on this tree, in one process each, alternated
# (base, tree, base, tree), so a change is measured against its base on the same card in the same call.
# The base comes as a `git archive` tar carried under build-base/ (ignored by git):
#   git archive <rev> -o build-base/base.tar      then the device tool with carry ["build-base", ".device-deps"]
# Builds the base's bench_hisa_cuda in /tmp/hilo-base while this tree's targets build (run it after, or beside,
# scripts/device/hisa_gpu.sh, which builds this tree). AB_ARGS: the benchmark's arguments (default: HISA prefill
# only, chunk at 16K/64K/128K and causal 16K/64K). Output: $OUT/ab.log.
# Usage: scripts/device/hisa_ab.sh build   (start the base build in the background; returns at once)
#        scripts/device/hisa_ab.sh run     (wait for it, then benchmark both)
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/hilo-out}
mkdir -p "$OUT"
base=/tmp/hilo-base
case "${1:-run}" in
  build)
    [ -f build-base/base.tar ] ||
      { echo "hisa_ab.sh: build-base/base.tar is missing (git archive <rev> -o build-base/base.tar, then carry it)"; exit 1; }
    rm -rf "$base" && mkdir -p "$base" && tar -xf build-base/base.tar -C "$base" && ln -s "$PWD/.device-deps" "$base/.device-deps"
    (cd "$base" && PREBUILT=0 OUT=$base/out scripts/device/build_targets.sh bench_hisa_cuda > "$base/build.txt" 2>&1
     echo $? > "$base/build.rc") &
    ;;
  run)
    [ -d "$base" ] || { echo "hisa_ab.sh: no base build started (run 'scripts/device/hisa_ab.sh build' first)"; exit 1; }
    while [ ! -f "$base/build.rc" ]; do sleep 2; done
    [ "$(cat "$base/build.rc")" = 0 ] || { echo "base build failed"; cat "$base/build.txt"; exit 1; }
    read -r -a args <<< "${AB_ARGS:---parts prefill --hisa-only --contexts 16384,65536,131072 --causal 16384,65536 --repeat 5}"
    for round in 1 2; do
      for side in base tree; do
        bin=build-device/bench/bench_hisa_cuda
        [ $side = base ] && bin=$base/build-device/bench/bench_hisa_cuda
        echo "## round $round: $side" | tee -a "$OUT/ab.log"
        timeout 150 "$bin" "${args[@]}" 2>&1 | grep -vE "^\s*$" | tee -a "$OUT/ab.log"
      done
    done
    ;;
esac
