#!/usr/bin/env bash
# On THIS machine: builds a benchmark (bench_lords_cuda unless named) of a base revision for sm_90a, the same way as
# prebuild.sh, into build-carry/base_<target>.gz, for same-call A/B runs on the device (scripts/device/prebuilt_ab.sh,
# scripts/device/decode_ab.sh). Run it
# before or after prebuild.sh (which keeps it; build-carry/BASE_REVISION names it). The base is built in a git worktree under /tmp; prebuild.sh sets
# CCACHE_BASEDIR to the tree's root, so objects the two trees share compile once (from the second build on).
# NAME (default base) names the copy: build-carry/<NAME>_<target>.gz and <NAME>_REVISION, e.g. a second revision for
# a three-way A/B (scripts/device/decode_ab.sh SIDES).
# Usage: scripts/device/prebuild_base.sh REV [TARGET]
set -euo pipefail
cd "$(dirname "$0")/../.."
[ $# -ge 1 ] && [ $# -le 2 ] || { echo "usage: scripts/device/prebuild_base.sh REV [TARGET]" >&2; exit 2; }
rev=$(git rev-parse --short "$1")
target=${2:-bench_lords_cuda}
tree=/tmp/hilo-base-$rev
[ -d "$tree" ] || git worktree add --detach "$tree" "$rev" > /dev/null
(cd "$tree" && scripts/device/prebuild.sh "$target" > /tmp/prebuild-base.log 2>&1) ||
  { tail -20 /tmp/prebuild-base.log; exit 1; }
mkdir -p build-carry
name=${NAME:-base}
# The base tree's prebuild.sh packs xz (bin.txz) or, before 2026-12-07, gzip (bin.tgz); the copy stays gzip.
if [ -f "$tree/build-carry/bin.txz" ]; then
  xz -dc "$tree/build-carry/bin.txz" | tar -xO "bin/$target" | gzip > "build-carry/${name}_$target.gz"
else
  tar -xzf "$tree/build-carry/bin.tgz" -O "bin/$target" | gzip > "build-carry/${name}_$target.gz"
fi
echo "$rev" > "build-carry/${name^^}_REVISION"
echo "build-carry/${name}_$target.gz: $target of $rev"
