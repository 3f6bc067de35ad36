#!/usr/bin/env python3
"""Plots bench_hisa_cuda's decode results: the flat call's share of the measured copy bandwidth (the issue's 75%
target as a line) and HISA's speedup over flat (the 3x target), per batch, one line per context; direct calls and, as
dotted lines, CUDA-graph replays.

usage: scripts/plot_hisa_decode.py RESULTS.json OUT.png   (needs matplotlib)
"""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main(src, dst):
    data = json.load(open(src))
    rows = data["decode"]
    if not rows:
        sys.exit(f"{src}: no decode results")
    copy = data["copy_bandwidth_gbs"]
    fig, (bw_ax, sp_ax) = plt.subplots(1, 2, figsize=(12, 4.2))
    for context in sorted({r["context"] for r in rows}):
        sel = sorted((r for r in rows if r["context"] == context), key=lambda r: r["batch"])
        batches = [r["batch"] for r in sel]
        label = f"{context // 1024}K keys"
        line, = bw_ax.plot(batches, [100 * r["flat_gbs"] / copy for r in sel], "o-", label=label)
        # graph replays move the same bytes in less time
        bw_ax.plot(batches, [100 * r["flat_gbs"] * r["flat_ms"] / r["flat_ms_graph"] / copy for r in sel], ":",
                   color=line.get_color())
        sp_ax.plot(batches, [r["speedup"] for r in sel], "o-", color=line.get_color(), label=label)
        sp_ax.plot(batches, [r["speedup_graph"] for r in sel], ":", color=line.get_color())
    bw_ax.axhline(75, color="red", linestyle="--", linewidth=1, label="target (75%)")
    sp_ax.axhline(3, color="red", linestyle="--", linewidth=1, label="target at batch 64 x 64K (3x)")
    sp_ax.axhline(1, color="black", linewidth=0.8)
    card = data["gpu"].split(",")[0]
    xlabel = "batch (requests, next_n 1); solid: direct calls, dotted: graph replay"
    bw_ax.set(xscale="log", xlabel=xlabel, ylabel="flat decode, % of copy bandwidth", title=f"flat decode, {card}")
    sp_ax.set(xscale="log", xlabel=xlabel, ylabel="HISA speedup over flat", title=f"HISA decode, {card}")
    for ax in (bw_ax, sp_ax):
        ax.set_xticks(sorted({r["batch"] for r in rows}))
        ax.get_xaxis().set_major_formatter(matplotlib.ticker.ScalarFormatter())
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(dst, dpi=100)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
