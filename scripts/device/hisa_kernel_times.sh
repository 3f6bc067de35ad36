#!/usr/bin/env bash
# On the GPU machine: where the flat prefill's time goes (SIDE=flat, the default) or HISA's (SIDE=hisa), kernel by
# kernel. For each case, the call's median time (bench_hisa_cuda --flat-only / --hisa-only, no profiler), then
# Nsight Compute's duration of every kernel of the profiled run (clocks not locked), summed by kernel name
# (scripts/ncu_kernel_times.py; CALLS, default 6 for flat: two calls of each of three variants; 3 for HISA: warm-up,
# timed, stage split). The difference between the call's time and its kernels' sum is memsets, launch gaps and host
# work.
# CASES: "chunk:CONTEXT" (4096 queries at the end) or "causal:CONTEXT"; default "chunk:65536 causal:16384".
# Output: $OUT/kernel-times.md. Usage (device tool, carry [".device-deps"]): scripts/device/hisa_kernel_times.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/hilo-out}
mkdir -p "$OUT"
[ -x build-device/bench/bench_hisa_cuda ] || scripts/device/build_targets.sh bench_hisa_cuda || exit 1
bench=build-device/bench/bench_hisa_cuda
report=$OUT/kernel-times.md
side=${SIDE:-flat}
calls=${CALLS:-$([ "$side" = flat ] && echo 6 || echo 3)}
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv,noheader | tee -a "$report"
for case in ${CASES:-chunk:65536 causal:16384}; do
  kind=${case%%:*} context=${case#*:}
  if [ "$kind" = chunk ]; then args=(--contexts "$context" --causal ""); else args=(--contexts "" --causal "$context"); fi
  echo "## $side prefill, $kind $context" | tee -a "$report"
  timeout 120 $bench --parts prefill "${args[@]}" --$side-only --repeat 5 2>&1 | grep -E "$side" | tee -a "$report"
  csv=$OUT/ncu-times-$side-$kind-$context.csv
  timeout 240 ncu --clock-control none --metrics gpu__time_duration.sum --csv --print-units base \
    --print-kernel-base function $bench --parts prefill "${args[@]}" --$side-only --repeat 1 > "$csv" 2> /dev/null
  python3 scripts/ncu_kernel_times.py "$csv" --calls "$calls" | tee -a "$report"
  gzip -f "$csv"
done
