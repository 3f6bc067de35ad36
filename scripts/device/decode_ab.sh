#!/usr/bin/env bash
# On the GPU machine, with prebuilt binaries (PREBUILT=1, carry ["build-carry"]): the HISA decode and top-k
# benchmark of a base build (build-carry/base_bench_hisa_cuda.gz: scripts/device/prebuild_base.sh REV
# bench_hisa_cuda; more with SIDES) and of this tree's build, alternated for ROUNDS rounds (default 2) in one call, so that a change
# is measured against its base on the same card. AB_ARGS: the benchmark's arguments. Output: $OUT/decode-ab.tgz
# (ab.log, {base,new}-<round>.json).
set -uo pipefail
cd "$(dirname "$0")/../.."
final=${OUT:-/tmp/hilo-out}
OUT=/tmp/decode-ab && rm -rf $OUT && mkdir -p "$OUT" "$final"
trap 'tar -czf "$final/decode-ab.tgz" -C "$OUT" .' EXIT
scripts/device/build_targets.sh bench_hisa_cuda > /dev/null || exit 1
# SIDES: which builds take turns; "new" is this tree's, any other name X is build-carry/X_bench_hisa_cuda.gz.
sides=${SIDES:-base new}
for side in $sides; do
  [ "$side" = new ] && continue
  gunzip -c "build-carry/${side}_bench_hisa_cuda.gz" > "/tmp/${side}_bench_hisa_cuda" && chmod +x "/tmp/${side}_bench_hisa_cuda" ||
    { echo "no build-carry/${side}_bench_hisa_cuda.gz"; exit 1; }
  echo "$side: $(cat "build-carry/${side^^}_REVISION" 2>/dev/null || echo unknown)" | tee -a "$OUT/ab.log"
done
echo "new: $(cat build-carry/REVISION)" | tee -a "$OUT/ab.log"
read -r -a args <<< "${AB_ARGS:---parts decode,topk --batches 8,64,128 --decode-contexts 65536,131072 --topk-shapes 64x65536,64x131072 --repeat 9}"
for round in $(seq 1 "${ROUNDS:-2}"); do
  for side in $sides; do
    bin=build-device/bench/bench_hisa_cuda
    [ "$side" != new ] && bin=/tmp/${side}_bench_hisa_cuda
    echo "## round $round: $side" | tee -a "$OUT/ab.log"
    timeout 200 "$bin" "${args[@]}" --json "$OUT/$side-$round.json" 2>&1 | grep -E "^decode|graph|^topk|top-k" | tee -a "$OUT/ab.log"
  done
done
