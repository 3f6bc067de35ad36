#!/usr/bin/env bash
# On THIS machine (no GPU): lists, for every CUDA source of the library, the kernels that issue a constant-cache
# global load (LDG ... CONSTANT, from __ldg or a const __restrict__ pointer) before their griddepcontrol.wait
# (ACQBULK in SASS). Such a load may read what the previous kernel has not written yet, so it must touch only data no
# kernel of the chain writes (weights); see griddep_wait in src/cuda/ptx.cuh. Needs build-prebuilt
# (scripts/device/prebuild.sh) and nvdisasm (pip wheel nvidia-cuda-nvdisasm; NVDISASM=path).
# Usage: scripts/check_pdl_loads.sh [source.cu ...]   (default: every .cu under src/)
set -euo pipefail
cd "$(dirname "$0")/.."
nvdisasm=${NVDISASM:-$(command -v nvdisasm || find /tmp/nvd -name nvdisasm -type f 2> /dev/null | head -1)}
[ -x "$nvdisasm" ] || { echo "check_pdl_loads: no nvdisasm (set NVDISASM)" >&2; exit 2; }
[ -f build-prebuilt/build.ninja ] || { echo "check_pdl_loads: run scripts/device/prebuild.sh first" >&2; exit 2; }
sources=("$@")
[ ${#sources[@]} -gt 0 ] || mapfile -t sources < <(find src -name '*.cu' | sort)
work=$(mktemp -d) && trap 'rm -rf "$work"' EXIT
status=0
for source in "${sources[@]}"; do
  object=$(cd build-prebuilt && ninja -t targets all | grep -o "^[^:]*${source#src/}\.o" | head -1) || true
  [ -n "$object" ] || { echo "check_pdl_loads: no object for $source" >&2; status=2; continue; }
  # The object's own nvcc line, made to write one sm_90a cubin.
  cmd=$(cd build-prebuilt && ninja -t commands "$object" | tail -1)
  cmd=${cmd#ccache }
  cmd=${cmd/ -c / -cubin }
  cmd=$(sed -E 's/--generate-code=arch=compute_[0-9a]+,code=\[[^]]*\]/-arch=sm_90a/g' <<< "$cmd")
  cmd=${cmd/-o $object/-o $work/k.cubin}
  (cd build-prebuilt && eval "$cmd") || { echo "check_pdl_loads: $source did not compile" >&2; status=2; continue; }
  # Per function: constant loads seen before the first ACQBULK; reported only for functions that wait.
  "$nvdisasm" -c "$work/k.cubin" | awk -v source="$source" '
    function flush() { if (waits && early) { printf "%s: %s: %d constant load(s) before the wait\n", source, fn, early; bad = 1 } }
    /^[ \t]*\.text\./ { flush(); fn = $1; sub(/:$/, "", fn); sub(/^\.text\./, "", fn); waits = 0; early = 0; next }
    /ACQBULK/ { waits = 1 }
    /LDG[^;]*CONSTANT/ { if (!waits) early++ }
    END { flush(); exit bad }' || status=1
  echo "$source: checked" >&2
done
exit $status
