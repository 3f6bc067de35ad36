#!/usr/bin/env python3
"""Plots bench_hisa_cuda's decode JSON: per context, flat (decode wgmma kernel and the mma.sync kernel) and HISA
time against the batch, and the flat call's share of the measured copy bandwidth.

usage: scripts/plot_hisa_decode.py docs/results/history/hisa-decode-h200-2026-11-28-wgmma-decode.json \
           docs/results/hisa-decode.png   (needs matplotlib)
"""
import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main(src, dst):
    data = json.load(open(src))
    rows = data["decode"]
    contexts = sorted({r["context"] for r in rows})
    fig, axes = plt.subplots(1, len(contexts) + 1, figsize=(5 * (len(contexts) + 1), 4.2))
    for ax, context in zip(axes, contexts):
        case = sorted((r for r in rows if r["context"] == context), key=lambda r: r["batch"])
        batch = [r["batch"] for r in case]
        ax.plot(batch, [r["flat_ms"] for r in case], "o-", label="flat (decode wgmma kernel)")
        ax.plot(batch, [r["flat_ms_mma_sync"] for r in case], "o--", color="gray", label="flat (mma.sync kernel)")
        ax.plot(batch, [r["hisa_ms"] for r in case], "s-", label="HISA")
        for r in case:
            ax.annotate(f"{r['speedup']:.1f}x", (r["batch"], r["hisa_ms"]), textcoords="offset points",
                        xytext=(0, -13), ha="center", fontsize=8)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("batch (next_n 1)")
        ax.set_ylabel("ms per call")
        ax.set_title(f"decode, context {context // 1024}K")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    ax = axes[-1]
    for context in contexts:
        case = sorted((r for r in rows if r["context"] == context), key=lambda r: r["batch"])
        ax.plot([r["batch"] for r in case], [100 * r["flat_gbs"] / data["copy_bandwidth_gbs"] for r in case], "o-",
                label=f"{context // 1024}K")
    ax.axhline(75, color="red", linestyle=":", label="target 75%")
    ax.set_xscale("log", base=2)
    ax.set_ylim(0, 100)
    ax.set_xlabel("batch")
    ax.set_ylabel("% of measured copy bandwidth")
    ax.set_title("flat decode, whole call")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.suptitle(f"{data['gpu']}, {data['date']}, copy bandwidth {data['copy_bandwidth_gbs']:.0f} GB/s")
    fig.tight_layout()
    tmp = dst + ".tmp.png"
    fig.savefig(tmp, dpi=110)
    os.replace(tmp, dst)  # never a half-written figure


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
