#!/usr/bin/env bash
# Quantizes a model with every block-wise and LoRDS setting of a group and evaluates them all against the base in
# one `hilo kld` pass (the base runs once per window). Writes quant-<group>.json and kld-<group>.json to OUTDIR;
# scripts/eval_report.py turns them into docs/results/eval-tinylm.{md,json,png}.
#
#   scripts/eval_sweep.sh OUTDIR [GROUP...]      GROUP: blockwise lords-adam lords-als (default: all three)
#   env: MODEL (../shared/fixtures/tinylm), TOKENS (MODEL/validation_tokens.safetensors), HILO (build/cli/hilo),
#        WINDOWS (0 = every window), THREADS (0 = all cores), WORK (where the quantized checkpoints go)
set -euo pipefail
out=${1:?usage: eval_sweep.sh OUTDIR [GROUP...]}
shift
groups=${*:-blockwise lords-adam lords-als}
MODEL=${MODEL:-../shared/fixtures/tinylm}
TOKENS=${TOKENS:-$MODEL/validation_tokens.safetensors}
HILO=${HILO:-build/cli/hilo}
WINDOWS=${WINDOWS:-0}
THREADS=${THREADS:-0}
WORK=${WORK:-$out/checkpoints}
mkdir -p "$out" "$WORK"

for group in $groups; do
  case $group in
    blockwise) args=(--method blockwise) ;;
    lords-adam) args=(--method lords --optimizer adam) ;;
    lords-als) args=(--method lords --optimizer als) ;;
    *) echo "unknown group $group" >&2; exit 2 ;;
  esac
  models=()
  for cb in nf4 nf3 nf2 int4 int3; do
    for block in 64 128; do
      name=$group-$cb-b$block
      echo "quantize $name" >&2
      "$HILO" quantize "$MODEL" -o "$WORK/$name" "${args[@]}" --codebook "${cb%[0-9]}" --bits "${cb: -1}" \
        --block "$block" --threads "$THREADS" --force --json > "$WORK/quant-$name.json"
      models+=("$WORK/$name")
    done
  done
  # One file per group: {name: quantize report}.
  python3 - "$WORK" "$group" > "$out/quant-$group.json" <<'PY'
import json, pathlib, sys
work, group = pathlib.Path(sys.argv[1]), sys.argv[2]
print(json.dumps({p.stem[len("quant-"):]: json.loads(p.read_text()) for p in sorted(work.glob(f"quant-{group}-*.json"))}))
PY
  echo "kld $group (${#models[@]} models)" >&2
  "$HILO" kld "$MODEL" "${models[@]}" --tokens "$TOKENS" --max-windows "$WINDOWS" --threads "$THREADS" --json \
    > "$out/kld-$group.json"
done
