#!/usr/bin/env python3
"""Plots bench_hisa_cuda's JSON: prefill time of flat (wgmma and mma.sync kernels) and HISA per context, and the
flat call's TFLOP/s.

usage: scripts/plot_hisa_cuda.py docs/results/hisa-cuda.json docs/results/hisa-cuda.png   (needs matplotlib)
"""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main(src, dst):
    data = json.load(open(src))
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    for ax, kind, title in zip(axes[:2], ["chunk", "causal"], ["4096 queries at the end", "causal, S = N"]):
        rows = [r for r in data["prefill"] if r["kind"] == kind]
        ctx = [r["context"] // 1024 for r in rows]
        ax.plot(ctx, [r["flat_ms"] for r in rows], "o-", label="flat (wgmma)")
        ax.plot(ctx, [r["flat_mma_ms"] for r in rows], "o--", color="gray", label="flat (mma.sync, first version)")
        ax.plot(ctx, [r["hisa_ms"] for r in rows], "s-", label="HISA")
        for r, x in zip(rows, ctx):
            ax.annotate(f"{r['speedup']:.1f}x", (x, r["hisa_ms"]), textcoords="offset points", xytext=(0, -13),
                        ha="center", fontsize=8)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("context (K tokens)")
        ax.set_ylabel("ms")
        ax.set_title(f"prefill, {title}")
        ax.legend(fontsize=8)
    ax = axes[2]
    for kind, marker in [("chunk", "o-"), ("causal", "s-")]:
        rows = [r for r in data["prefill"] if r["kind"] == kind]
        ax.plot([r["context"] // 1024 for r in rows], [r["flat_tflops"] for r in rows], marker, label=f"flat, {kind}")
    ax.axhline(800, color="red", linestyle=":", label="issue target 800")
    ax.set_xscale("log", base=2)
    ax.set_ylim(0, 1000)
    ax.set_xlabel("context (K tokens)")
    ax.set_ylabel("TFLOP/s (whole flat call)")
    ax.set_title("flat indexer throughput")
    ax.legend(fontsize=8)
    fig.suptitle(f"{data['gpu']}, {data['date']}: H=64, D=128, fp8, topk 2048, B=128, m=64")
    fig.tight_layout()
    fig.savefig(dst, dpi=110)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
