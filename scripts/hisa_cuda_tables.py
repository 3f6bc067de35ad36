#!/usr/bin/env python3
"""Prints the markdown tables of docs/results/hisa-cuda.md from bench_hisa_cuda's JSON.
usage: scripts/hisa_cuda_tables.py docs/results/hisa-cuda.json"""
import json
import sys


def k(n):
    return f"{n // 1048576}M" if n >= 1048576 else f"{n // 1024}K"


def main(path):
    d = json.load(open(path))
    bw = d["copy_bandwidth_gbs"]
    print(f"{d['gpu']}, {d['sms']} SMs, CUDA runtime {d['cuda_runtime']}, {d['date']}; measured device-to-device copy "
          f"bandwidth {bw:.0f} GB/s (read + write).\n")
    print("## Prefill (H=64, D=128, fp8, topk 2048, B=128, m=64)\n")
    print("| case | context | queries | flat ms | flat TFLOP/s | HISA ms | speedup | pool / blocks / tokens ms | IoU mean / min "
          "| scratch flat / HISA MiB | mma.sync kernels: flat / HISA ms |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in d["prefill"]:
        case = "chunk at the end" if r["kind"] == "chunk" else "causal S = N"
        print(f"| {case} | {k(r['context'])} | {r['queries']} | {r['flat_ms']:.2f} | {r['flat_tflops']:.0f} | {r['hisa_ms']:.2f} "
              f"| {r['speedup']:.2f}x | {r['pool_ms']:.2f} / {r['block_ms']:.2f} / {r['token_ms']:.2f} "
              f"| {r['iou_mean']:.4f} / {r['iou_min']:.4f} | {r['flat_scratch_bytes'] / 2**20:.0f} / {r['hisa_scratch_bytes'] / 2**20:.0f} "
              f"| {r.get('flat_mma_ms', float('nan')):.2f} / {r.get('hisa_mma_ms', float('nan')):.2f} |")
    print("\n## Decode (next_n 1)\n")
    print("| context | batch | flat ms | flat GB/s | % of copy bandwidth | HISA ms | HISA GB/s | speedup | IoU mean / min |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in d["decode"]:
        print(f"| {k(r['context'])} | {r['batch']} | {r['flat_ms']:.3f} | {r['flat_gbs']:.0f} | {100 * r['flat_gbs'] / bw:.0f}% "
              f"| {r['hisa_ms']:.3f} | {r['hisa_gbs']:.0f} | {r['speedup']:.2f}x | {r['iou_mean']:.4f} / {r['iou_min']:.4f} |")
    print("\n## Top-k alone (k = 2048, random normal scores)\n")
    names = ["one CTA per row", "segments of 16K + merge", "cluster of 4 CTAs per row", "automatic (default)"]
    print("| rows x length | " + " | ".join(f"{n}, us" for n in names) + " | GB/s (default) |")
    print("| --- " * (len(names) + 2) + "|")
    rows = {}
    for r in d["topk"]:
        rows.setdefault((r["rows"], r["len"]), {})[r["strategy"]] = r["us"]
    for (n, length), v in rows.items():
        auto = v.get(names[-1], float("nan"))
        cells = " | ".join(f"{v.get(name, float('nan')):.1f}" for name in names)
        print(f"| {n} x {k(length)} | {cells} | {n * length * 4 / auto / 1e3:.0f} |")


if __name__ == "__main__":
    main(sys.argv[1])
