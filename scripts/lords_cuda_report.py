#!/usr/bin/env python3
"""Tables and a plot for docs/results/lords-cuda.md from one device run of scripts/device/lords_bench_all.sh: hilo's
block-wise and LoRDS GPU matmul (bench_lords_cuda JSON files) against cuBLAS bf16 measured in the same run.

    python3 scripts/lords_cuda_report.py CUBLAS.json RUN.json[:LABEL] [RUN.json[:LABEL] ...] [--png OUT.png] [--batch N]

LABEL names a run's series in the plot (e.g. an A/B run of another kernel); the default is "NF{bits} B{block}".
Runs that carry the streaming floor (bench_lords_cuda's read_us / read_pdl_us) add those columns, and the plot shows
the first such run's floor (launched by PDL) as the most any kernel reading those bytes could reach.
Against the card's measured ceilings: GB/s as a share of the run's copy bandwidth, TFLOP/s as a share of the best
cuBLAS bf16 rate of the same call. An NF4 B=64 run also gets the issue's target table (4-bit, B=64 parity rank).
"""
import argparse
import json

SHAPES = [(4096, 4096), (1024, 4096), (14336, 4096), (4096, 14336)]
TARGETS = [(1, 3.2), (16, 2.0), (1024, 0.8)]  # batch, speed-up over cuBLAS bf16 wanted (issue 5, 4-bit, B=64)


def print_targets(run, cublas):
    """The issue's targets for an NF4 B=64 run: LoRDS and block-wise against cuBLAS, LoRDS against block-wise."""
    us = {"cublas": cublas}  # source -> (out, in, batch) -> µs
    for r in run["rows"]:
        us.setdefault(r["method"], {})[(r["out"], r["in"], r["batch"])] = r["us"]

    def ratios(batch, faster, slower):  # slower's time over faster's on each shape: the speed-up of `faster`
        cells = [(us.get(slower, {}).get((o, i, batch)), us.get(faster, {}).get((o, i, batch))) for o, i in SHAPES]
        return ", ".join(f"{a / b:.2f}x" if a and b else "-" for a, b in cells)

    print(f"\nAgainst the issue's targets (NF4, B=64 parity rank; shapes {', '.join(f'{o}x{i}' for o, i in SHAPES)}):\n")
    print("| target | wanted | LoRDS | block-wise |\n| --- | --- | --- | --- |")
    for batch, wanted in TARGETS:
        print(f"| batch {batch} vs cuBLAS | {wanted}x | {ratios(batch, 'lords', 'cublas')} | "
              f"{ratios(batch, 'blockwise', 'cublas')} |")
    print(f"| LoRDS vs block-wise, batch 1 | within 5% (>= 0.95x) | {ratios(1, 'lords', 'blockwise')} | |")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("cublas")
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--png")
    ap.add_argument("--batch", type=int, help="plot only the bars of this batch (default: batch 1, and the batch sizes "
                    "of the first run beside them)")
    args = ap.parse_args()
    cublas_run = json.load(open(args.cublas))
    cublas = {(r["out"], r["in"], r["batch"]): r["us"] for r in cublas_run["rows"]}
    vs_cublas = f"speed vs cuBLAS bf16 (cuBLAS run of {cublas_run.get('date', '?')})"
    batch = args.batch or 1
    best = max(cublas_run["rows"], key=lambda r: r["tflops"])
    ceiling = best["tflops"]
    print(f"Measured ceilings of this call: cuBLAS bf16 at its best {ceiling:.0f} TFLOP/s ({best['out']}x{best['in']}, "
          f"batch {best['batch']}); copy bandwidth per run below. \"% copy\" is the stored bytes' rate against the "
          f"copy bandwidth, \"% cuBLAS best\" the TFLOP/s against that ceiling.")
    points = []
    card = ""
    floor_shown = False
    for spec in args.runs:
        path, _, label = spec.partition(":")
        run = json.load(open(path))
        bits, block = run["bits"], run["block"]
        label = label or f"NF{bits} B{block}"
        card = card or run["device"].split(" (")[0]
        has_floor = all("read_pdl_us" in r for r in run["rows"])
        print(f"\n**NF{bits}, B={block}** (LoRDS at parity rank), {run['device']}, copy bandwidth {run['copy_gbs']:.0f} GB/s\n")
        read_head = " read µs / PDL |" if has_floor else ""
        print("| shape (out x in) | batch | method | rank | µs | GB/s | % copy | TFLOP/s | % cuBLAS best | floor µs |" +
              read_head + " cuBLAS bf16 µs | vs cuBLAS | vs block-wise |")
        print("| --- " * (14 if has_floor else 13) + "|")
        blockwise = {(r["out"], r["in"], r["batch"]): r["us"] for r in run["rows"] if r["method"] == "blockwise"}
        for r in run["rows"]:
            key = (r["out"], r["in"], r["batch"])
            base = cublas.get(key)
            vs = f"{base / r['us']:.2f}x" if base else "-"
            vs_bw = f"{blockwise[key] / r['us']:.2f}x" if r["method"] == "lords" and key in blockwise else "-"
            rank = r["rank"] if r["method"] == "lords" else "-"
            tflops = 2.0 * r["batch"] * r["out"] * r["in"] / r["us"] / 1e6
            head = (f"| {r['out']}x{r['in']} | {r['batch']} | {r['method']} | {rank} | {r['us']:.1f} | {r['gbs']:.0f} | "
                    f"{100 * r['gbs'] / run['copy_gbs']:.0f}% | {tflops:.1f} | {100 * tflops / ceiling:.0f}% | "
                    f"{r['floor_us']:.1f} |")
            if has_floor:
                head += f" {r['read_us']:.1f} / {r['read_pdl_us']:.1f} |"
            print(f"{head} {base:.1f} | {vs} | {vs_bw} |" if base else f"{head} - | - | {vs_bw} |")
            if base:
                points.append((f"{r['out']}x{r['in']}", f"{label} {r['method']}", r["batch"], base / r["us"]))
                # The byte floor bounds the memory-bound batches only; at 256 and more it dwarfs the plot.
                if has_floor and not floor_shown and r["method"] == "blockwise" and r["batch"] <= 64:
                    points.append((f"{r['out']}x{r['in']}", "read-only floor (PDL)", r["batch"], base / r["read_pdl_us"]))
        floor_shown = floor_shown or has_floor
        if (bits, block) == (4, 64):
            print_targets(run, cublas)
    if args.png and points:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        # Left: --batch on every shape; right: speed vs cuBLAS over the batch sizes of the first run (NF4 B64).
        ones = [p for p in points if p[2] == batch]
        shapes = sorted({p[0] for p in ones}, key=lambda s: [int(v) for v in s.split("x")])
        series = sorted({p[1] for p in ones})
        one_batch = args.batch is not None or all(p[2] == 1 for p in points)  # the left panel only
        fig, axes = plt.subplots(1, 1 if one_batch else 2, figsize=(6.5 if one_batch else 13, 4.5))
        ax, bx = (axes, None) if one_batch else axes
        width = 0.8 / len(series)
        for i, name in enumerate(series):
            ys = [next((p[3] for p in ones if p[0] == s and p[1] == name), 0) for s in shapes]
            ax.bar([x + i * width for x in range(len(shapes))], ys, width, label=name)
        ax.axhline(1.0, color="black", lw=0.8)
        target = {1: 3.2, 16: 2.0, 1024: 0.8}.get(batch)  # the targets (4-bit, B=64)
        if target:
            ax.axhline(target, color="red", lw=0.8, ls="--", label="issue target (4-bit B64)")
        ax.set_xticks([x + 0.4 - width / 2 for x in range(len(shapes))], shapes)
        ax.set_ylabel(vs_cublas)
        ax.set_title(f"batch {batch} ({card})")
        ax.legend(fontsize=7, ncol=2)
        if bx is None:
            fig.tight_layout()
            fig.savefig(args.png, dpi=120)
            return
        first = points[0][1].rsplit(" ", 1)[0]
        for shape in shapes:
            for method in ("blockwise", "lords"):
                name = f"{first} {method}"
                pts = sorted((p[2], p[3]) for p in points if p[0] == shape and p[1] == name)
                if pts:
                    bx.plot([b for b, _ in pts], [v for _, v in pts], marker="o", ls="-" if method == "lords" else ":",
                            label=f"{shape} {method}")
        bx.set_xscale("log", base=2)
        bx.axhline(1.0, color="black", lw=0.8)
        bx.set_xlabel("batch (activation rows)")
        bx.set_ylabel(vs_cublas)
        bx.set_title(f"{first} over batch sizes ({card})")
        bx.legend(fontsize=6, ncol=2)
        fig.tight_layout()
        fig.savefig(args.png, dpi=120)


if __name__ == "__main__":
    main()
