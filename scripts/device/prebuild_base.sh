#!/usr/bin/env bash
# On THIS machine: builds bench_lords_cuda of a base revision for sm_90a, the same way as prebuild.sh, into
# build-carry/base_bench_lords_cuda.gz, for same-call A/B runs on the device (scripts/device/prebuilt_ab.sh). Run it
# before or after prebuild.sh (which keeps it; build-carry/BASE_REVISION names it). The base is built in a git worktree under /tmp; prebuild.sh sets
# CCACHE_BASEDIR to the tree's root, so objects the two trees share compile once (from the second build on).
# Usage: scripts/device/prebuild_base.sh REV
set -euo pipefail
cd "$(dirname "$0")/../.."
[ $# -eq 1 ] || { echo "usage: scripts/device/prebuild_base.sh REV" >&2; exit 2; }
rev=$(git rev-parse --short "$1")
tree=/tmp/hilo-base-$rev
[ -d "$tree" ] || git worktree add --detach "$tree" "$rev" > /dev/null
(cd "$tree" && scripts/device/prebuild.sh bench_lords_cuda > /tmp/prebuild-base.log 2>&1) ||
  { tail -20 /tmp/prebuild-base.log; exit 1; }
mkdir -p build-carry
tar -xzf "$tree/build-carry/bin.tgz" -O bin/bench_lords_cuda | gzip > build-carry/base_bench_lords_cuda.gz
echo "$rev" > build-carry/BASE_REVISION
echo "build-carry/base_bench_lords_cuda.gz: bench_lords_cuda of $rev"
