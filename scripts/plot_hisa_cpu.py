#!/usr/bin/env python3
"""Plots bench_hisa_cpu's JSON: time of flat vs HISA per context (prefill and decode) and HISA's IoU.

usage: scripts/plot_hisa_cpu.py docs/results/hisa-cpu.json docs/results/hisa-cpu.png   (needs matplotlib)
"""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main(src, dst):
    data = json.load(open(src))
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    for ax, mode in zip(axes[:2], ["prefill", "decode"]):
        rows = data.get(mode, [])
        ctx = [r["context"] // 1024 for r in rows]
        ax.plot(ctx, [r["flat_ms"] for r in rows], "o-", label="flat indexer")
        ax.plot(ctx, [r["hisa_ms"] for r in rows], "s-", label="HISA")
        for r, x in zip(rows, ctx):
            ax.annotate(f"{r['speedup']:.1f}x", (x, r["hisa_ms"]), textcoords="offset points", xytext=(0, 7),
                        ha="center", fontsize=8)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("context (K tokens)")
        ax.set_ylabel("ms")
        what = f"{rows[0]['rows']} queries" if mode == "prefill" and rows else "batch 8"
        ax.set_title(f"{mode}: {what}, H=64 D=128 fp8, topk 2048")
        ax.legend()
        ax.grid(True, which="both", alpha=0.3)
    ax = axes[2]
    for mode, marker in [("prefill", "o"), ("decode", "s")]:
        rows = data.get(mode, [])
        ctx = [r["context"] // 1024 for r in rows]
        ax.plot(ctx, [r["iou_mean"] for r in rows], marker + "-", label=f"HISA IoU ({mode})")
        ax.plot(ctx, [r["block_only_iou_mean"] for r in rows], marker + "--", label=f"block-only IoU ({mode})")
    ax.set_xscale("log", base=2)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("context (K tokens)")
    ax.set_title("overlap with the flat top-k (mean IoU)")
    ax.legend(fontsize=8)
    ax.grid(True, alpha=0.3)
    fig.suptitle(f"hilo CPU indexers, {data['cpu']}, {data['threads']} threads, {data['date']}")
    fig.tight_layout()
    fig.savefig(dst, dpi=110)


if __name__ == "__main__":
    main(*sys.argv[1:3])
