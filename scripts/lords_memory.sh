#!/usr/bin/env bash
# Peak resident memory of `hilo quantize` (/usr/bin/time -v) on the fixture and on synthetic Llama-3-8B-shaped
# checkpoints of 2 and 4 layers streamed from disk: if one tensor is in memory at a time, the peak does not grow
# with the model. Usage: scripts/lords_memory.sh [BUILD_DIR] [WORK_DIR]   (needs ~6 GB of disk in WORK_DIR)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
work=${2:-/tmp/hilo-memory}
mkdir -p "$work"
hilo=$build/cli/hilo
peak() {  # prints "peak_MB seconds" of a command
  /usr/bin/time -v "$@" > /dev/null 2> "$work/time.log" || { cat "$work/time.log"; exit 1; }
  awk -F': ' '/Maximum resident set size/ {kb=$2} /Elapsed \(wall clock\)/ {t=$2} END {printf "%.0f MB, %s wall\n", kb/1024, t}' "$work/time.log"
}
size() { du -sm "$1" | cut -f1; }
fixture=../shared/fixtures/tinylm
if [ -d "$fixture" ]; then
  rm -rf "$work/fixture-q"
  echo "fixture ($(size $fixture) MB on disk), lords nf4 B64 (500 Adam steps): $(peak $hilo quantize $fixture -o $work/fixture-q)"
fi
for layers in 2 4; do
  model=$work/synth-$layers
  [ -d "$model" ] || "$build/bench/lords_synth_model" "$model" --layers "$layers" 2> /dev/null
  for method in blockwise lords; do
    rm -rf "$work/q-$layers-$method"
    steps=$([ $method = lords ] && echo "--steps 2" || echo "")
    echo "synthetic 8B-shaped, $layers layers ($(size $model) MB on disk), $method nf4 B64 $steps:" \
      "$(peak $hilo quantize $model -o $work/q-$layers-$method --method $method $steps)"
  done
done
