#!/usr/bin/env bash
# On THIS machine (no GPU needed): builds device targets for sm_90a and puts stripped copies in build-carry/, so that
# a device call can skip its 2-3 minute build: carry ["build-carry"] and set PREBUILT=1 for the device scripts
# (build_targets.sh then unpacks the binaries into build-device/ instead of building). The binaries need nothing
# carried: fmt header-only, libstdc++ and libgcc linked statically, the CUDA runtime static; they need the device's
# libgomp and a glibc at least as new as this machine's (Debian 12: 2.36, for the static libstdc++'s arc4random). build-carry/REVISION names the tree they came from; the carry limit is 64 MiB in all.
# Usage: scripts/device/prebuild.sh TARGET...   (e.g. hilo_tests bench_hisa_cuda)
set -euo pipefail
cd "$(dirname "$0")/../.."
[ $# -gt 0 ] || { echo "usage: scripts/device/prebuild.sh TARGET..." >&2; exit 2; }
export PATH=$PATH:/usr/local/cuda/bin
launcher=()
command -v ccache > /dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_CUDA_COMPILER_LAUNCHER=ccache)
# Paths relative to the tree's root in ccache's hashes: a worktree of another revision (prebuild_base.sh) reuses
# every object the two trees share.
export CCACHE_BASEDIR=$PWD
cmake -S . -B build-prebuilt -G Ninja -DCMAKE_BUILD_TYPE=Release -DHILO_FMT_HEADER_ONLY=ON \
  -DCMAKE_CUDA_ARCHITECTURES=90a -DCMAKE_EXE_LINKER_FLAGS="-static-libstdc++ -static-libgcc" \
  -DPython_EXECUTABLE="$(command -v python3)" "${launcher[@]}" > /dev/null
cmake --build build-prebuilt --target "$@"
# A base binary of prebuild_base.sh stays (a device call that finds none has started a machine for nothing).
rm -rf build-carry/bin build-carry/bin.tgz build-carry/bin.txz build-carry/REVISION && mkdir -p build-carry/bin
for target in "$@"; do
  bin=$(find build-prebuilt -type f -name "$target" -perm -u+x | head -1)
  [ -n "$bin" ] || { echo "prebuild: no executable named $target" >&2; exit 1; }
  cp "$bin" build-carry/bin/ && strip "build-carry/bin/$target"
done
glibc=$(objdump -T build-carry/bin/"$1" | grep -o 'GLIBC_[0-9.]*' | sort -V | tail -1)
echo "needs from the device: $(ldd build-carry/bin/"$1" | awk '/=>/ {print $1}' | tr '\n' ' ')(${glibc} or later)"
git describe --always --dirty > build-carry/REVISION
# xz with a window that spans both binaries (they share most kernels): tests + benchmark 23 MB against gzip's 44
# (2026-12-07), so that they, a base build and the tracked tree fit the 64 MiB the device tool carries.
tar -cf - -C build-carry bin | xz -9 -T0 > build-carry/bin.txz && rm -rf build-carry/bin
size=$(du -sm build-carry | cut -f1)
echo "build-carry/bin.txz ($(cat build-carry/REVISION)): $* - ${size} MiB"
[ "$size" -le 64 ] || { echo "prebuild: over the 64 MiB carry limit; build fewer targets" >&2; exit 1; }
