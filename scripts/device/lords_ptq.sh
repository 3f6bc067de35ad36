#!/usr/bin/env bash
# On the GPU machine: the LoRDS GPU refinement (quantize --device cuda). Builds the tests, the CLI, the PTQ benchmark
# and the synthetic-checkpoint writer (carried deps, see build_and_test.sh); runs the GPU PTQ tests (compute-sanitizer
# memcheck on the GEMM test unless SANITIZERS=""); the per-shape benchmark on the Llama-3-8B shapes with the CPU
# refinement as the same-run baseline; and `hilo quantize --device cuda` end to end on a 2-layer synthetic
# Llama-3-8B-shaped checkpoint (LAYERS=32: the whole model, 14 GB of bf16 on the device's disk, end to end instead of
# summed per-shape timings; NO_BENCH=1 skips the per-shape benchmark to leave it the time). The writer draws UNIQUE
# layers (default 2; drawing took 40 s per layer on 2 cores here) and writes the others as row-rotated copies of them
# (2 s per layer here, disk-bound), so 32 layers fit one call; UNIQUE=0 draws every layer.
# Usage (device tool, carry [".device-deps"]): scripts/device/lords_ptq.sh [quick]
# Results in $OUT: ptq-*.json, logs.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/hilo-out}
mkdir -p "$OUT"
scripts/device/build_targets.sh hilo_tests hilo_cli bench_lords_ptq lords_synth_model || exit 1
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv,noheader | tee "$OUT/gpu.txt"
build-device/tests/hilo_tests --gtest_filter='LordsCudaPtq*:Lords.*Refuse*' > "$OUT/ptq-test.log" 2>&1
rc=$?
grep -E "OK \]|FAILED|Failure|Expected|Which|seed|gpu .* cpu" "$OUT/ptq-test.log" | head -30
for tool in ${SANITIZERS-memcheck}; do
  timeout 200 compute-sanitizer --tool $tool --error-exitcode 9 build-device/tests/hilo_tests \
    --gtest_filter='LordsCudaPtq.DenseGemm*' > "$OUT/ptq-$tool.log" 2>&1
  echo "$tool rc=$? $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$OUT/ptq-$tool.log" | tail -1)"
done
bench=build-device/bench/bench_lords_ptq
copy=${COPY_GBS:-4270}
if [ -z "${NO_BENCH:-}" ]; then
  timeout 240 $bench --bits 4 --block 64 --copy-gbs "$copy" --json "$OUT/ptq-nf4-b64.json" 2>&1 | tee "$OUT/ptq-bench.log"
  if [ "${1:-}" != quick ]; then
    timeout 120 $bench --bits 3 --block 64 --cpu-steps 0 --copy-gbs "$copy" --json "$OUT/ptq-nf3-b64.json" 2>&1 |
      tee -a "$OUT/ptq-bench.log"
  fi
fi
# End to end: the CLI on a LAYERS-layer checkpoint of the 8B shapes (bf16 in, hilo format out).
layers=${LAYERS:-2}
model=/tmp/hilo-synth-8b
rm -rf "$model" /tmp/hilo-synth-8b-q
since() { python3 -c "print(round($(date +%s.%N) - $1, 1))"; }  # seconds since a `date +%s.%N` stamp
start=$(date +%s.%N)
unique=${UNIQUE:-2}
drawn=$(( unique == 0 || unique > layers ? layers : unique ))
timeout $((60 + 15 * drawn + 3 * layers)) build-device/bench/lords_synth_model "$model" --layers "$layers" --vocab 1024 \
  --unique-layers "$unique" 2> /dev/null
echo "synthetic checkpoint: $layers layers ($drawn drawn), $(du -sh "$model" | cut -f1), $(since "$start") s"
start=$(date +%s.%N)
timeout $((60 + 12 * layers)) build-device/cli/hilo quantize "$model" -o /tmp/hilo-synth-8b-q --device cuda --json > "$OUT/ptq-cli.json" \
  2> "$OUT/ptq-cli.err"
echo "cli rc=$? wall $(since "$start") s"
python3 -c "import json; r=json.load(open('$OUT/ptq-cli.json')); print('cli', r['device'], len(r['tensors']), 'tensors', round(r['seconds'],1), 's, mean rel_error', round(r['rel_error_mean'],5))"
exit $rc
