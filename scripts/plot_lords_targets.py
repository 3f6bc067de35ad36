#!/usr/bin/env python3
"""Plots where the issue's matmul targets stand, from one device call: per batch (1, 16, 1024) and Llama-3-8B layer
shape, the speed-up over cuBLAS bf16 of the block-wise and LoRDS kernels and of a kernel that only reads the layer's
bytes (the "read pdl" column of bench_lords_cuda; no kernel of the layer beats it), against the target line. Writes a
PNG.

    python3 scripts/plot_lords_targets.py docs/results/history/s12/call2-all/new-1.json \
        docs/results/history/s12/call2-all/cublas.json --title "H100, NF4 B=64" -o docs/results/lords-cuda-targets.png
"""
import argparse
import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

TARGETS = {1: 3.2, 16: 2.0, 1024: 0.8}  # the issue's, for LoRDS against cuBLAS bf16


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bench", help="bench_lords_cuda JSON with both methods at batches 1, 16 and 1024")
    ap.add_argument("cublas", help="cuBLAS JSON of the same call (scripts/device/cublas_baseline.py)")
    ap.add_argument("--title", default="")
    ap.add_argument("-o", "--output", required=True)
    args = ap.parse_args()
    with open(args.bench) as f:
        rows = json.load(f)["rows"]
    with open(args.cublas) as f:
        cublas = {(r["out"], r["in"], r["batch"]): r["us"] for r in json.load(f)["rows"]}
    fig, axes = plt.subplots(1, len(TARGETS), figsize=(14, 4.2))
    for ax, (batch, target) in zip(axes, TARGETS.items()):
        at = [r for r in rows if r["batch"] == batch and (r["out"], r["in"], batch) in cublas]
        shapes = list(dict.fromkeys((r["out"], r["in"]) for r in at))
        # (label, the rows' method, their time field, colour); the read is the same for both methods' rows
        bars = [("read only", "blockwise", "read_pdl_us", "0.8")] if batch < 1024 else []
        bars += [("block-wise", "blockwise", "us", "tab:blue"), ("LoRDS", "lords", "us", "tab:orange")]
        width = 0.8 / len(bars)
        top = 0.0
        for k, (label, method, field, color) in enumerate(bars):
            by_shape = {(r["out"], r["in"]): r for r in at if r["method"] == method}
            ys = [cublas[s + (batch,)] / by_shape[s][field] if s in by_shape else 0 for s in shapes]
            xs = [i + (k - (len(bars) - 1) / 2) * width for i in range(len(shapes))]
            ax.bar(xs, ys, width, label=label, color=color)
            top = max(top, *ys)
            for x, y in zip(xs, ys):
                ax.text(x, y, f"{y:.2f}", ha="center", va="bottom", fontsize=7)
        ax.axhline(target, color="red", linestyle="--", linewidth=1, label=f"target {target}x")
        ax.axhline(1.0, color="black", linewidth=0.6)
        ax.set_xticks(range(len(shapes)), [f"{o}x{i}" for o, i in shapes], fontsize=8)
        ax.set_title(f"batch {batch}")
        ax.set_ylabel("speed-up over cuBLAS bf16")
        ax.set_ylim(0, 1.35 * max(top, target))  # room for the legend above the bars
        ax.legend(fontsize=7, loc="upper left", ncol=2)
    fig.suptitle(args.title)
    fig.tight_layout()
    fig.savefig(args.output, dpi=110)


if __name__ == "__main__":
    main()
