#!/usr/bin/env python3
"""Figure for docs/results/lords-ptq-cuda.md from bench_lords_ptq JSON: per Llama-3-8B shape, milliseconds per Adam
step on the GPU and on the CPU (same process), and where a tensor's time goes (fixed CPU part vs GPU refinement).

    python3 scripts/plot_lords_ptq.py RUN.json OUT.png
"""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def main():
    run = json.load(open(sys.argv[1]))
    rows = run["shapes"]
    names = [r["shape"] for r in rows]
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(12, 4.2))
    xs = range(len(rows))
    ax.bar([x - 0.2 for x in xs], [r["ms_per_step"] for r in rows], 0.4, label=f"GPU ({run['device']})")
    if run.get("cpu_steps", 0) > 0:
        ax.bar([x + 0.2 for x in xs], [r["cpu_ms_per_step"] for r in rows], 0.4, label="CPU (16 cores, same process)")
    ax.set_yscale("log")
    ax.set_xticks(list(xs), names)
    ax.set_ylabel("ms per Adam step (log)")
    ax.set_title(f"NF{run['bits']} B={run['block']}, parity rank: one refinement step")
    ax.legend(fontsize=8)
    fixed = [r["fixed_seconds"] for r in rows]
    refine = [r["seconds"] - r["fixed_seconds"] for r in rows]
    bx.bar(xs, fixed, 0.5, label="fixed (steps = 0: init, upload, final codes, packing, report)")
    bx.bar(xs, refine, 0.5, bottom=fixed, label=f"GPU refinement ({run['steps']} steps)")
    bx.set_xticks(list(xs), names)
    bx.set_ylabel("seconds per tensor")
    bx.set_title(f"whole 8B-shaped model: {run['model_seconds'] / 60:.1f} min")
    bx.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(sys.argv[2], dpi=120)


if __name__ == "__main__":
    main()
