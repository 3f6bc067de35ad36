#!/usr/bin/env python3
"""Plots the batch GEMM's speed against cuBLAS bf16 from one device call: TFLOP/s per Llama-3-8B layer shape, for each
bench_lords_cuda JSON given (e.g. the base revision and this one) and cuBLAS (scripts/device/cublas_baseline.py), one
panel per method, at one batch. Writes a PNG.

    python3 scripts/plot_lords_gemm.py --batch 1024 --cublas cublas.json --run "before=base.json" \
        --run "now=wgmma.json" --title "H100, NF4 B=64" -o docs/results/lords-cuda-batch1024.png
"""
import argparse
import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def rows_at(path, batch):
    with open(path) as f:
        return [r for r in json.load(f)["rows"] if r["batch"] == batch]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, required=True)
    ap.add_argument("--cublas", required=True, help="cuBLAS JSON of the same call")
    ap.add_argument("--run", action="append", required=True, help="LABEL=bench.json (repeatable)")
    ap.add_argument("--title", default="")
    ap.add_argument("-o", "--output", required=True)
    args = ap.parse_args()
    runs = [(spec.split("=", 1)[0], rows_at(spec.split("=", 1)[1], args.batch)) for spec in args.run]
    cublas = {(r["out"], r["in"]): r for r in rows_at(args.cublas, args.batch)}
    shapes = list(cublas)
    methods = [("blockwise", "block-wise"), ("lords", "LoRDS (parity rank)")]
    fig, axes = plt.subplots(1, len(methods), figsize=(11, 4), sharey=True)
    width = 0.8 / (len(runs) + 1)
    for ax, (method, name) in zip(axes, methods):
        xs = range(len(shapes))
        for k, (label, rows) in enumerate(runs):
            by_shape = {(r["out"], r["in"]): r for r in rows if r["method"] == method}
            ax.bar([x + k * width for x in xs], [by_shape[s]["tflops"] if s in by_shape else 0 for s in shapes],
                   width, label=label)
        ax.bar([x + len(runs) * width for x in xs], [cublas[s]["tflops"] for s in shapes], width,
               label="cuBLAS bf16", color="0.6")
        ax.set_xticks([x + width * len(runs) / 2 for x in xs], [f"{o}x{i}" for o, i in shapes])
        ax.set_title(f"{name}, batch {args.batch}")
        ax.grid(axis="y", alpha=0.3)
    top = max(r["tflops"] for r in cublas.values())
    for _, rows in runs:
        top = max([top] + [r["tflops"] for r in rows])
    axes[0].set_ylim(0, 1.2 * top)  # room for the legend above the bars
    axes[0].set_ylabel("TFLOP/s")
    axes[0].legend(loc="upper center", ncols=len(runs) + 1, fontsize=8)
    fig.suptitle(args.title)
    fig.tight_layout()
    fig.savefig(args.output, dpi=110)


if __name__ == "__main__":
    main()
