#!/usr/bin/env python3
"""Markdown table of same-call A/B runs of bench_lords_cuda (scripts/device/prebuilt_ab.sh and
scripts/device/lords_profile_call.sh write base-N.json and new-N.json): µs per call of every round, the ratio of the
medians (base / new: above 1 = the new build is faster), and, given cuBLAS' JSON (scripts/device/cublas_baseline.py),
the new build against cuBLAS bf16. For each variant of the new build (env-N.json from prebuilt_ab.sh's NEW_ENV, or
envV-N.json from lords_profile_call.sh's V-th variant) and each other build (side-NAME-N.json from its SIDES) two
more columns: its µs, and new / it.

    python3 scripts/lords_ab_table.py DIR [--cublas DIR/cublas.json]
"""
import argparse
import glob
import json
import os
import re
import statistics


def load(paths):
    runs = {}
    for p in paths:
        for r in json.load(open(p))["rows"]:
            runs.setdefault((r["out"], r["in"], r["batch"], r["method"], r["rank"]), []).append(r["us"])
    return runs


def variants(directory):
    """{name: runs} of the variant files: env-N.json as "env", envV-N.json as "envV", and other builds
    (lords_profile_call.sh's SIDES) side-NAME-N.json as "side-NAME"."""
    names = set()
    for p in glob.glob(os.path.join(directory, "*-*.json")):
        m = re.fullmatch(r"(env\d*|side-[\w.]+)-\d+\.json", os.path.basename(p))
        if m:
            names.add(m.group(1))
    return {n: load(sorted(glob.glob(os.path.join(directory, f"{n}-*.json")))) for n in sorted(names)}


def rounds(us):
    return " / ".join(f"{u:.1f}" for u in us) or "-"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dir", help="directory holding base-*.json and new-*.json")
    ap.add_argument("--cublas", help="cuBLAS JSON of the same call")
    args = ap.parse_args()
    base = load(sorted(glob.glob(os.path.join(args.dir, "base-*.json"))))
    new = load(sorted(glob.glob(os.path.join(args.dir, "new-*.json"))))
    envs = variants(args.dir)
    cublas = {}
    if args.cublas:
        for r in json.load(open(args.cublas))["rows"]:
            cublas[(r["out"], r["in"], r["batch"])] = r["us"]
    print("| shape | batch | method (rank) | base µs | new µs | base / new | new vs cuBLAS |" +
          "".join(f" {n} µs | new / {n} |" for n in envs))
    print("| --- | --- | --- | --- | --- | --- | --- |" + " --- | --- |" * len(envs))
    for key in sorted(new, key=lambda k: (k[2], k[3], -k[0] * k[1], k[0])):
        out, inp, batch, method, rank = key
        b, n = base.get(key, []), new[key]
        ratio = f"{statistics.median(b) / statistics.median(n):.2f}x" if b else "-"
        cb = cublas.get((out, inp, batch))
        vs = f"{cb / statistics.median(n):.2f}x" if cb else "-"
        label = method + (f" ({rank})" if method == "lords" else "")
        extra = ""
        for runs in envs.values():
            e = runs.get(key, [])
            extra += f" {rounds(e)} | {statistics.median(n) / statistics.median(e):.2f}x |" if e else " - | - |"
        print(f"| {out}x{inp} | {batch} | {label} | {rounds(b)} | {rounds(n)} | {ratio} | {vs} |" + extra)


if __name__ == "__main__":
    main()
