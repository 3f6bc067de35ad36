#!/usr/bin/env bash
# On THIS machine: packs the prebuilt base and side benchmarks (build-carry/<name>_<target>.gz or .xz, from
# scripts/device/prebuild_base.sh) into one build-carry/sides.txz, xz with a window that spans them all: builds of
# nearby revisions share most of their 34 MB, so three cost about as much as one (the carry limit is 64 MiB).
# lords_profile_call.sh unpacks from it. NAMEs: keep only those builds (default: all).
# Usage: scripts/device/pack_sides.sh [NAME...]
set -euo pipefail
cd "$(dirname "$0")/../.."
work=$(mktemp -d) && trap 'rm -rf "$work"' EXIT
[ -f build-carry/sides.txz ] && tar -xJf build-carry/sides.txz -C "$work"
shopt -s nullglob
for packed in build-carry/*_bench_*.gz build-carry/*_bench_*.xz; do
  name=$(basename "${packed%.*}")
  case $packed in *.gz) gunzip -c "$packed" ;; *) xz -dc "$packed" ;; esac > "$work/$name"
  rm "$packed"
done
if [ $# -gt 0 ]; then
  for f in "$work"/*; do
    keep=0
    for name in "$@"; do [[ $(basename "$f") == "${name}"_bench_* ]] && keep=1; done
    [ $keep = 1 ] || rm "$f"
  done
fi
tar -cf - -C "$work" . | xz -9 -T0 > build-carry/sides.txz.tmp && mv build-carry/sides.txz.tmp build-carry/sides.txz
names=$(tar -tJf build-carry/sides.txz | grep -v '/$' | xargs -n1 basename | tr '\n' ' ')
echo "build-carry/sides.txz: ${names}- $(du -m build-carry/sides.txz | cut -f1) MiB"
