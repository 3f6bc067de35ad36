#!/usr/bin/env python3
"""Merges scripts/eval_sweep.sh outputs (quant-<group>.json, kld-<group>.json, from one or more directories) into
one JSON of rows, a Markdown table and a PNG (perplexity and KL divergence against bits per weight).

usage: scripts/eval_report.py OUT.json OUT.png DIR [DIR...] > table.md
"""
import json
import math
import sys
from pathlib import Path

GROUP_LABEL = {"blockwise": "block-wise absmax", "lords-adam": "LoRDS (Adam 500)", "lords-als": "LoRDS (ALS 20)"}


def rows_from(dirs):
    rows = []
    for d in map(Path, dirs):
        for kld_file in sorted(d.glob("kld-*.json")):
            group = kld_file.stem[len("kld-"):]
            quant = json.loads((d / f"quant-{group}.json").read_text()) if (d / f"quant-{group}.json").exists() else {}
            results = json.loads(kld_file.read_text())
            for r in results if isinstance(results, list) else [results]:
                name = Path(r["quant"]).name
                q = quant.get(name, {})
                cb, block = name.split("-")[-2], int(name.split("-")[-1][1:])
                rows.append({"name": name, "group": group, "method": GROUP_LABEL.get(group, group), "codebook": cb,
                             "bits": int(cb[-1]), "block": block, "bits_per_weight": q.get("bits_per_weight"),
                             "rel_error_mean": q.get("rel_error_mean"), "quantize_seconds": q.get("seconds"),
                             "ppl": r["quant_ppl"], "base_ppl": r["base_ppl"], "kld_mean": r["kld_mean"],
                             "kld_median": r["kld_median"], "kld_p99": r["kld_p99"], "kld_max": r["kld_max"],
                             "top1": r["top1_agreement"], "tokens": r["tokens"], "windows": r["windows"],
                             "format": r["quant_linear_format"]})
    return rows


def table(rows):
    base = rows[0]["base_ppl"]
    out = [f"bf16 (no quantization): perplexity **{base:.3f}** over {rows[0]['tokens']} predictions "
           f"({rows[0]['windows']} windows).\n",
           "| codebook | B | method | bits/w | rel. weight error | perplexity | vs bf16 | KLD mean | KLD p99 | top-1 "
           "agreement | quantize s |",
           "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    order = {"blockwise": 0, "lords-adam": 1, "lords-als": 2}
    for r in sorted(rows, key=lambda r: (-r["bits"], r["codebook"][:-1] != "nf", r["block"], order.get(r["group"], 9))):
        bpw = f"{r['bits_per_weight']:.3f}" if r["bits_per_weight"] else "-"
        err = f"{r['rel_error_mean']:.4f}" if r["rel_error_mean"] else "-"
        sec = f"{r['quantize_seconds']:.1f}" if r["quantize_seconds"] is not None else "-"
        out.append(f"| {r['codebook']} | {r['block']} | {r['method']} | {bpw} | {err} | {r['ppl']:.3f} | "
                   f"{100 * (r['ppl'] / base - 1):+.2f}% | {r['kld_mean']:.4f} | {r['kld_p99']:.4f} | {r['top1']:.4f} | "
                   f"{sec} |")
    return "\n".join(out)


def plot(rows, dst):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    markers = {"blockwise": "o", "lords-adam": "s", "lords-als": "^"}
    colors = {"nf": "tab:blue", "int": "tab:orange"}
    for r in rows:
        r["ppl_increase"] = 100 * (r["ppl"] / r["base_ppl"] - 1)
    for ax, key, label in [(axes[0], "ppl_increase", "perplexity increase over bf16, % (log)"),
                           (axes[1], "kld_mean", "mean KL divergence from bf16, nats (log)")]:
        for r in rows:
            if not r["bits_per_weight"]:
                continue
            ax.scatter(r["bits_per_weight"], r[key], marker=markers.get(r["group"], "x"),
                       color=colors[r["codebook"][:-1]], s=40)
        ax.set_yscale("log")
        ax.set_xlabel("bits per weight (codes + scales or factors)")
        ax.set_ylabel(label)
        ax.grid(True, alpha=0.3)
    handles = [plt.Line2D([], [], marker=m, ls="", color="gray", label=GROUP_LABEL[g]) for g, m in markers.items()]
    handles += [plt.Line2D([], [], marker="o", ls="", color=c, label=k.upper() + " codes") for k, c in colors.items()]
    axes[1].legend(handles=handles, fontsize=8)
    fig.suptitle("tinylm fixture, full validation set: quantized perplexity and KL divergence from bf16")
    fig.tight_layout()
    fig.savefig(dst, dpi=110)


if __name__ == "__main__":
    rows = rows_from(sys.argv[3:])
    Path(sys.argv[1]).write_text(json.dumps(rows, indent=1) + "\n")
    print(table(rows))
    plot(rows, sys.argv[2])
