#!/usr/bin/env python3
"""Summarises Nsight Compute's per-SASS-instruction counters (ncu --page source --print-source sass --csv, as written
by scripts/device/lords_sass_profile.sh): total warp-state samples by stall reason, the instructions holding the most
samples, and the samples per window of 100 instructions (where in the kernel the time goes).

    python3 scripts/ncu_sass_stalls.py sass-lords-lords_gemv-4096x4096-b1.csv.gz [--top 40]
"""
import argparse
import csv
import gzip


def number(text):
    try:
        return float(text)
    except ValueError:
        return 0.0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("csv", help="the CSV (.csv or .csv.gz)")
    ap.add_argument("--top", type=int, default=30, help="instructions listed")
    args = ap.parse_args()
    opener = gzip.open if args.csv.endswith(".gz") else open
    with opener(args.csv, "rt") as f:
        rows = list(csv.reader(f))
    header = next(r for r in rows if r and r[0] == "Address")
    data = rows[rows.index(header) + 1:]
    col = {name: i for i, name in enumerate(header)}
    samples = col["Warp Stall Sampling (All Samples)"]
    executed = col["Instructions Executed"]
    reasons = [i for i, h in enumerate(header) if h.startswith("stall_") and "Not Issued" not in h]
    total = sum(number(r[samples]) for r in data) or 1.0
    print(f"{len(data)} instructions, {total:.0f} samples, "
          f"{sum(number(r[executed]) for r in data):.0f} warp instructions executed")
    by_reason = {header[i][6:]: sum(number(r[i]) for r in data) for i in reasons}
    print("by reason: " + " ".join(f"{k}={v / total:.0%}" for k, v in sorted(by_reason.items(), key=lambda x: -x[1])
                                   if v / total >= 0.01))
    top = sorted(range(len(data)), key=lambda i: -number(data[i][samples]))[:args.top]
    for i in sorted(top):
        r = data[i]
        main_reasons = sorted(((header[j][6:], number(r[j])) for j in reasons), key=lambda x: -x[1])[:2]
        print(f"{i:5d} {number(r[samples]) / total:6.1%} executed {int(number(r[executed])):8d}  "
              f"{r[col['Source']].strip()[:56]:56s} " + ", ".join(f"{k} {v:.0f}" for k, v in main_reasons if v))
    windows = [sum(number(r[samples]) for r in data[s:s + 100]) for s in range(0, len(data), 100)]
    print("samples per 100 instructions: " + " ".join(f"{100 * w}:{v / total:.0%}" for w, v in enumerate(windows)
                                                       if v / total >= 0.005))


if __name__ == "__main__":
    main()
