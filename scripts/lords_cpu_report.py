#!/usr/bin/env python3
"""Turns bench_lords_matmul's JSON into the table of docs/results/lords-cpu.md (and a PNG of the speedups).

usage: scripts/lords_cpu_report.py docs/results/lords-cpu.json [docs/results/lords-cpu.png] > table.md
"""
import json
import sys


def table(data):
    out = ["| shape (out x in) | batch | method | ms | weight MB | GB/s | vs dense bf16 | read-bandwidth bound ms |",
           "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in data["results"]:
        out.append(f"| {r['rows']}x{r['cols']} | {r['batch']} | {r['method']} | {r['ms']:.3f} | "
                   f"{r['weight_bytes'] / 1e6:.1f} | {r['gbs']:.1f} | {r['speedup_vs_bf16']:.2f}x | "
                   f"{r['bandwidth_bound_ms']:.3f} |")
    return "\n".join(out)


def plot(data, dst):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    batches = sorted({r["batch"] for r in data["results"]})
    methods = [m for m in dict.fromkeys(r["method"] for r in data["results"]) if m != "dense bf16"]
    fig, axes = plt.subplots(1, len(batches), figsize=(5 * len(batches), 4), sharey=True)
    for ax, b in zip(axes, batches):
        rows = [r for r in data["results"] if r["batch"] == b]
        shapes = list(dict.fromkeys(f"{r['rows']}x{r['cols']}" for r in rows))
        width = 0.8 / len(methods)
        for i, m in enumerate(methods):
            vals = [next((r["speedup_vs_bf16"] for r in rows if r["method"] == m and f"{r['rows']}x{r['cols']}" == s),
                         0) for s in shapes]
            ax.bar([j + i * width for j in range(len(shapes))], vals, width, label=m)
        ax.axhline(1, color="k", lw=0.8)
        ax.set_xticks([j + 0.4 - width / 2 for j in range(len(shapes))], shapes)
        ax.set_title(f"batch {b}: speed vs dense bf16")
        ax.grid(True, axis="y", alpha=0.3)
    axes[0].set_ylabel("x faster than dense bf16")
    axes[-1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(dst, dpi=110)


if __name__ == "__main__":
    data = json.load(open(sys.argv[1]))
    print(f"{data['date']} | {data['cpu']} | {data['threads']} threads | measured read bandwidth "
          f"{data['read_bandwidth_gbs']:.1f} GB/s | LoRDS rank at parity with B={data['block']}\n")
    print(table(data))
    if len(sys.argv) > 2:
        plot(data, sys.argv[2])
