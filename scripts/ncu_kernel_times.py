#!/usr/bin/env python3
"""Sums Nsight Compute's kernel durations by kernel name (ncu --metrics gpu__time_duration.sum --csv
--print-units base --print-kernel-base function, as written by scripts/device/hisa_kernel_times.sh): where a call's
GPU time goes, kernel by kernel. Memsets and copies are not kernels and do not appear.

    python3 scripts/ncu_kernel_times.py ncu-times-flat-chunk-65536.csv --calls 2
"""
import argparse
import collections
import csv


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("csv", help="ncu's CSV")
    ap.add_argument("--calls", type=int, default=1, help="library calls profiled (the times are divided by it)")
    args = ap.parse_args()
    with open(args.csv, newline="") as f:
        rows = [r for r in csv.reader(f) if r]
    header = next((r for r in rows if "Kernel Name" in r and "Metric Value" in r), None)
    if header is None:
        raise SystemExit(f"{args.csv}: no ncu CSV header (Kernel Name, Metric Value) found")
    col = {name: i for i, name in enumerate(header)}
    total_ns = collections.Counter()
    launches = collections.Counter()
    for r in rows[rows.index(header) + 1:]:
        if len(r) != len(header) or r[col["Metric Name"]] != "gpu__time_duration.sum":
            continue
        name = r[col["Kernel Name"]]
        total_ns[name] += float(r[col["Metric Value"]].replace(",", ""))
        launches[name] += 1
    grand = sum(total_ns.values())
    print(f"| kernel | launches per call | us per call | share |")
    print("| --- | --- | --- | --- |")
    for name, ns in total_ns.most_common():
        print(f"| {name} | {launches[name] / args.calls:g} | {ns / 1e3 / args.calls:.1f} | {100 * ns / grand:.1f}% |")
    print(f"| all kernels | {sum(launches.values()) / args.calls:g} | {grand / 1e3 / args.calls:.1f} | 100% |")


if __name__ == "__main__":
    main()
