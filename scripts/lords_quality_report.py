#!/usr/bin/env python3
"""Turns bench_lords_quality's JSON into the tables of docs/results/lords-quality.md and a plot of error against
time for both refinements.

usage: scripts/lords_quality_report.py docs/results/lords-quality.json docs/results/lords-quality.png > tables.md
(needs matplotlib for the plot)
"""
import json
import sys
from collections import defaultdict


def mean_error(runs):
    """The mean relative error over matrices (what `hilo quantize` reports as rel_error_mean)."""
    return sum(r["rel_error"] for r in runs) / len(runs)


def catch_up(adam_runs, als_runs):
    """Seconds Adam needs to reach, on every matrix, the error ALS ends with (summed over matrices)."""
    if not als_runs:
        return "-"
    total = 0.0
    for ad in adam_runs:
        al = next(r for r in als_runs if r["tensor"] == ad["tensor"])
        per_step = ad["seconds"] / len(ad["trace"])
        hit = next((i for i, e in enumerate(ad["trace"]) if e <= al["rel_error"]), None)
        if hit is None:
            return "never"
        total += per_step * (hit + 1)
    return f"{total:.1f}"


def tables(data):
    out = []
    groups = defaultdict(list)  # (source, tensor or "all", codebook, block, method) -> runs
    for r in data["runs"]:
        key_tensor = "all layers" if r["source"] == "fixture" else r["tensor"]
        groups[(r["source"], key_tensor, r["codebook"], r["block"], r["method"])].append(r)
    rows = sorted({k[:4] for k in groups}, key=lambda k: (k[0] != "fixture", k[1], k[2], k[3]))
    out.append("| source | matrix | codebook | B | bits/w (bw / LoRDS) | block-wise | LoRDS adam | LoRDS als | "
               "adam vs bw | als vs bw | time bw / adam / als (s) | adam: time to ALS's final error (s) |")
    out.append("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for source, tensor, cb, block in rows:
        bw = groups.get((source, tensor, cb, block, "blockwise"), [])
        ad = groups.get((source, tensor, cb, block, "lords-adam"), [])
        al = groups.get((source, tensor, cb, block, "lords-als"), [])
        if not bw or not ad:
            continue
        e_bw, e_ad = mean_error(bw), mean_error(ad)
        e_al = mean_error(al) if al else None
        bits_bw = sum(r["bits_per_weight"] * r["rows"] * r["cols"] for r in bw) / sum(r["rows"] * r["cols"] for r in bw)
        bits_ad = sum(r["bits_per_weight"] * r["rows"] * r["cols"] for r in ad) / sum(r["rows"] * r["cols"] for r in ad)
        t = lambda rs: sum(r["seconds"] for r in rs)
        shape = "" if source == "fixture" else f" {bw[0]['rows']}x{bw[0]['cols']}"
        out.append(f"| {source} | {tensor}{shape} | {cb} | {block} | {bits_bw:.3f} / {bits_ad:.3f} | {e_bw:.4f} | "
                   f"{e_ad:.4f} | {'%.4f' % e_al if al else '-'} | {100 * (e_ad / e_bw - 1):+.1f}% | "
                   f"{'%+.1f%%' % (100 * (e_al / e_bw - 1)) if al else '-'} | "
                   f"{t(bw):.1f} / {t(ad):.1f} / {'%.1f' % t(al) if al else '-'} | {catch_up(ad, al)} |")
    return "\n".join(out)


def plot(data, dst):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    picks = [("synthetic", "q_proj", "nf3", 64), ("synthetic", "q_proj", "nf2", 64), ("synthetic", "k_proj", "nf4", 128)]
    fig, axes = plt.subplots(1, len(picks), figsize=(5 * len(picks), 4))
    for ax, (source, tensor, cb, block) in zip(axes, picks):
        runs = [r for r in data["runs"] if r["source"] == source and r["tensor"] == tensor and r["codebook"] == cb
                and r["block"] == block]
        for r in runs:
            if r["method"] == "blockwise":
                ax.axhline(r["rel_error"], color="k", ls="--", label="block-wise")
                continue
            steps = len(r["trace"])
            per = r["seconds"] / max(steps, 1)
            best, curve = float("inf"), []
            for e in r["trace"]:
                best = min(best, e)
                curve.append(best)
            ax.plot([per * (i + 1) for i in range(steps)], curve, label=f"{r['method']} ({r['steps']} steps)")
        if runs:
            ax.set_title(f"{tensor} {runs[0]['rows']}x{runs[0]['cols']}, {cb}, B={block} (r={runs[-1]['rank']})")
        ax.set_xscale("log")
        ax.set_xlabel("seconds (2 cores)")
        ax.set_ylabel("relative error (best so far)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(dst, dpi=110)


if __name__ == "__main__":
    data = json.load(open(sys.argv[1]))
    for extra in sys.argv[3:]:  # more runs (e.g. ALS on the MLP shapes) merged in
        data["runs"] += json.load(open(extra))["runs"]
    print(tables(data))
    if len(sys.argv) > 2:
        plot(data, sys.argv[2])
