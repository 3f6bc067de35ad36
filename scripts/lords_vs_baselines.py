#!/usr/bin/env python3
"""hilo's LoRDS and block-wise matmuls against the baselines users already have, from one device call: cuBLAS bf16
(scripts/device/cublas_baseline.py) and bitsandbytes NF4, plain and double-quantized (scripts/device/bnb_baseline.py).
Prints a Markdown table (µs and speed-ups, above 1 = hilo is faster), optionally writes it as JSON and plots the
speed-ups over bitsandbytes NF4 per layer and batch as a PNG.

    python3 scripts/lords_vs_baselines.py DIR/new-1.json --cublas DIR/cublas.json --bnb DIR/bnb.json \
        [--json OUT.json] [--png OUT.png --title "..."]
"""
import argparse
import json
import os
import sys


def by_key(path, method_field=True):
    with open(path) as f:
        data = json.load(f)
    out = {}
    for r in data["rows"]:
        key = (r["out"], r["in"], r["batch"]) + ((r["method"],) if method_field else ())
        out[key] = r
    return data, out


def table_rows(hilo, cublas, bnb):
    rows = []
    shapes = sorted({(k[0], k[1]) for k in hilo}, key=lambda s: (-s[0] * s[1], -s[0]))
    for out_f, in_f in shapes:
        for batch in sorted({k[2] for k in hilo if (k[0], k[1]) == (out_f, in_f)}):
            def us(table, *method):
                r = table.get((out_f, in_f, batch) + method)
                return r["us"] if r else None
            lords = hilo.get((out_f, in_f, batch, "lords"))
            row = {"out": out_f, "in": in_f, "batch": batch, "rank": lords["rank"] if lords else None,
                   "cublas_us": us(cublas), "bnb_nf4_us": us(bnb, "bnb-nf4"), "bnb_nf4_dq_us": us(bnb, "bnb-nf4-dq"),
                   "blockwise_us": us(hilo, "blockwise"), "lords_us": lords["us"] if lords else None}
            for name in ("lords", "blockwise"):
                for base in ("cublas", "bnb_nf4"):
                    mine, theirs = row[f"{name}_us"], row[f"{base}_us"]
                    row[f"{name}_vs_{base}"] = theirs / mine if mine and theirs else None
            rows.append(row)
    return rows


def fmt(v, digits=1, suffix=""):
    return "-" if v is None else f"{v:.{digits}f}{suffix}"


def plot(rows, title, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    shapes = sorted({(r["out"], r["in"]) for r in rows}, key=lambda s: (-s[0] * s[1], -s[0]))
    fig, axes = plt.subplots(1, len(shapes), figsize=(4 * len(shapes), 3.6), sharey=True)
    for ax, (out_f, in_f) in zip(axes, shapes):
        mine = [r for r in rows if (r["out"], r["in"]) == (out_f, in_f)]
        xs = range(len(mine))
        for off, key, label in ((-0.2, "lords_vs_bnb_nf4", "LoRDS"), (0.2, "blockwise_vs_bnb_nf4", "block-wise NF4")):
            ax.bar([x + off for x in xs], [r[key] or 0 for r in mine], width=0.4, label=label)
        ax.axhline(1.0, color="black", lw=0.8)
        ax.set_xticks(list(xs), [str(r["batch"]) for r in mine])
        ax.set_xlabel("batch (activation rows)")
        ax.set_title(f"{out_f}x{in_f}")
    axes[0].set_ylabel("speed-up over bitsandbytes NF4")
    axes[0].legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path + ".tmp.png", dpi=110)
    os.replace(path + ".tmp.png", path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("hilo", help="bench_lords_cuda JSON (methods lords and blockwise)")
    ap.add_argument("--cublas", required=True)
    ap.add_argument("--bnb", required=True)
    ap.add_argument("--json")
    ap.add_argument("--png")
    ap.add_argument("--title", default="")
    args = ap.parse_args()
    for p in (args.hilo, args.cublas, args.bnb):
        if not os.path.exists(p):
            sys.exit(f"no such file: {p}")
    _, hilo = by_key(args.hilo)
    cublas_data, cublas = by_key(args.cublas, method_field=False)
    bnb_data, bnb = by_key(args.bnb)
    rows = table_rows(hilo, cublas, bnb)
    print(f"{bnb_data['card']}, CUDA {bnb_data['cuda']}, torch {bnb_data['torch']}, "
          f"bitsandbytes {bnb_data['bitsandbytes']}; µs per call")
    print()
    print("| shape (rank) | batch | cuBLAS bf16 | bnb NF4 | bnb NF4 double-quant | hilo block-wise NF4 | hilo LoRDS "
          "| LoRDS vs cuBLAS | LoRDS vs bnb NF4 | block-wise vs bnb NF4 |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['out']}x{r['in']} ({r['rank']}) | {r['batch']} | {fmt(r['cublas_us'])} | {fmt(r['bnb_nf4_us'])} "
              f"| {fmt(r['bnb_nf4_dq_us'])} | {fmt(r['blockwise_us'])} | {fmt(r['lords_us'])} "
              f"| {fmt(r['lords_vs_cublas'], 2, 'x')} | {fmt(r['lords_vs_bnb_nf4'], 2, 'x')} "
              f"| {fmt(r['blockwise_vs_bnb_nf4'], 2, 'x')} |")
    if args.json:
        meta = {k: bnb_data[k] for k in ("date", "card", "torch", "cuda", "bitsandbytes")}
        with open(args.json + ".tmp", "w") as f:
            json.dump({**meta, "cublas_copy_gbs": cublas_data.get("copy_gbs"), "rows": rows}, f, indent=1)
        os.replace(args.json + ".tmp", args.json)
    if args.png:
        plot(rows, args.title, args.png)


if __name__ == "__main__":
    main()
