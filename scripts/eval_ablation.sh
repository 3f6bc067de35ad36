#!/usr/bin/env bash
# Where 3-bit LoRDS' perplexity gain comes from on the fixture (docs/results/eval-tinylm.md, "Why 3-bit misses"):
#  1. one layer type at a time quantized (NF3 B64, block-wise vs LoRDS), the rest bf16;
#  2. refinement settings for the whole model (steps, learning rate, ALS, activation-aware calibration).
# Every model is evaluated in one `hilo kld` pass per part over the first WINDOWS windows (default 100).
#   scripts/eval_ablation.sh OUTDIR        env: MODEL, TOKENS, HILO, WINDOWS, THREADS as in eval_sweep.sh
set -euo pipefail
out=${1:?usage: eval_ablation.sh OUTDIR}
MODEL=${MODEL:-../shared/fixtures/tinylm}
TOKENS=${TOKENS:-$MODEL/validation_tokens.safetensors}
HILO=${HILO:-build/cli/hilo}
WINDOWS=${WINDOWS:-100}
THREADS=${THREADS:-0}
work=$out/checkpoints
mkdir -p "$work"
quantize() {  # name, then quantize options
  local name=$1
  shift
  echo "quantize $name" >&2
  "$HILO" quantize "$MODEL" -o "$work/$name" --bits 3 --codebook nf --block 64 --threads "$THREADS" --force --json \
    "$@" > "$work/quant-$name.json"
}
kld() {  # output name, then model directories
  local name=$1
  shift
  "$HILO" kld "$MODEL" "$@" --tokens "$TOKENS" --max-windows "$WINDOWS" --threads "$THREADS" --json > "$out/$name.json"
}

models=()
for t in q_proj k_proj v_proj o_proj gate_proj up_proj down_proj; do
  for m in blockwise lords; do
    quantize "only-$t-$m" --method "$m" --include "$t\\.weight\$"
    models+=("$work/only-$t-$m")
  done
done
kld by-layer "${models[@]}"

models=()
quantize settings-blockwise --method blockwise
quantize settings-adam500 --method lords
quantize settings-adam2000 --method lords --steps 2000
quantize settings-adam-lr0.03 --method lords --lr 0.03
quantize settings-adam-lr0.3 --method lords --lr 0.3
quantize settings-als20 --method lords --optimizer als
quantize settings-als100 --method lords --optimizer als --steps 100
# Calibration on the last 32 windows (disjoint from the evaluated first WINDOWS windows).
quantize settings-adam-calibrated --method lords --calibration "$TOKENS" --calibration-windows 32 --calibration-skip 916
for n in blockwise adam500 adam2000 adam-lr0.03 adam-lr0.3 als20 als100 adam-calibrated; do models+=("$work/settings-$n"); done
kld settings "${models[@]}"
python3 - "$work" > "$out/quantize-reports.json" <<'PY'
import json, pathlib, sys
w = pathlib.Path(sys.argv[1])
print(json.dumps({p.stem[len("quant-"):]: json.loads(p.read_text()) for p in sorted(w.glob("quant-*.json"))}))
PY
