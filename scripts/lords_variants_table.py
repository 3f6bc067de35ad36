#!/usr/bin/env python3
"""Side-by-side table of the rounds scripts/device/lords_profile_call.sh wrote: for each shape, batch and method, the
range of microseconds over the rounds of the base build (base-N.json), this build (lords-N.json) and each variant
(envV-N.json), and each one's speedup over this build (best round against best round).

    python3 scripts/lords_variants_table.py DIR [--method lords]
"""
import argparse
import collections
import glob
import json
import os
import re


def rows_of(path):
    data = json.load(open(path))
    if isinstance(data, dict):
        data = next(v for v in data.values() if isinstance(v, list))
    return {(r["out"], r["in"], r["batch"], r["method"]): r["us"] for r in data}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dir")
    ap.add_argument("--method", default=None, help="only this method (lords or blockwise)")
    args = ap.parse_args()
    sides = collections.defaultdict(list)  # side -> [rows of each round]
    for path in sorted(glob.glob(os.path.join(args.dir, "*.json"))):
        m = re.fullmatch(r"(base|lords|env\d+)-\d+\.json", os.path.basename(path))
        if m:
            sides[m.group(1)].append(rows_of(path))
    if "lords" not in sides:
        raise SystemExit(f"no lords-N.json in {args.dir}")
    order = [s for s in ["base", "lords"] + sorted(k for k in sides if k.startswith("env")) if s in sides]
    print("| shape | batch | method | " + " | ".join(order) + " |")
    print("| --- | --- | --- | " + " | ".join("---" for _ in order) + " |")
    for key in sides["lords"][0]:
        if args.method and key[3] != args.method:
            continue
        ref = min(r[key] for r in sides["lords"])
        cells = []
        for side in order:
            vals = [r[key] for r in sides[side] if key in r]
            if not vals:
                cells.append("-")
                continue
            lo, hi = min(vals), max(vals)
            span = f"{lo:.1f}" if f"{lo:.1f}" == f"{hi:.1f}" else f"{lo:.1f}-{hi:.1f}"
            cells.append(span if side == "lords" else f"{span} ({ref / lo:.2f}x)")
        print(f"| {key[0]}x{key[1]} | {key[2]} | {key[3]} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
