#!/usr/bin/env python3
"""Markdown table of same-call A/B runs of bench_lords_cuda (scripts/device/prebuilt_ab.sh writes base-N.json and
new-N.json): µs per call of every round, the ratio of the medians (base / new: above 1 = the new build is faster),
and, given cuBLAS' JSON (scripts/device/cublas_baseline.py), the new build against cuBLAS bf16. Where the run has
env-N.json (prebuilt_ab.sh with NEW_ENV), two more columns: the new build with that setting, and new / with it.

    python3 scripts/lords_ab_table.py DIR [--cublas DIR/cublas.json]
"""
import argparse
import glob
import json
import os
import statistics


def load(paths):
    runs = {}
    for p in paths:
        for r in json.load(open(p))["rows"]:
            runs.setdefault((r["out"], r["in"], r["batch"], r["method"], r["rank"]), []).append(r["us"])
    return runs


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dir", help="directory holding base-*.json and new-*.json")
    ap.add_argument("--cublas", help="cuBLAS JSON of the same call")
    args = ap.parse_args()
    base = load(sorted(glob.glob(os.path.join(args.dir, "base-*.json"))))
    new = load(sorted(glob.glob(os.path.join(args.dir, "new-*.json"))))
    env = load(sorted(glob.glob(os.path.join(args.dir, "env-*.json"))))
    cublas = {}
    if args.cublas:
        for r in json.load(open(args.cublas))["rows"]:
            cublas[(r["out"], r["in"], r["batch"])] = r["us"]
    env_head, env_rule = (" with NEW_ENV µs | new / with it |", " --- | --- |") if env else ("", "")
    print("| shape | batch | method (rank) | base µs | new µs | base / new | new vs cuBLAS |" + env_head)
    print("| --- | --- | --- | --- | --- | --- | --- |" + env_rule)
    for key in sorted(new, key=lambda k: (k[2], k[3], -k[0] * k[1], k[0])):
        out, inp, batch, method, rank = key
        b, n = base.get(key, []), new[key]
        ratio = f"{statistics.median(b) / statistics.median(n):.2f}x" if b else "-"
        cb = cublas.get((out, inp, batch))
        vs = f"{cb / statistics.median(n):.2f}x" if cb else "-"
        label = method + (f" ({rank})" if method == "lords" else "")
        extra = ""
        if env:
            e = env.get(key, [])
            extra = (f" {' / '.join(f'{u:.1f}' for u in e)} | {statistics.median(n) / statistics.median(e):.2f}x |"
                     if e else " - | - |")
        print(f"| {out}x{inp} | {batch} | {label} | {' / '.join(f'{u:.1f}' for u in b) or '-'} | "
              f"{' / '.join(f'{u:.1f}' for u in n)} | {ratio} | {vs} |" + extra)


if __name__ == "__main__":
    main()
