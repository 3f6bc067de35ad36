#!/usr/bin/env python3
"""Prints the markdown tables of docs/results/hisa-cpu.md from bench_hisa_cpu's JSON (so the file never drifts
from the measurement). usage: scripts/hisa_cpu_tables.py docs/results/hisa-cpu.json"""
import json
import sys


def ctx(n):
    return f"{n // 1024}K"


def main(path):
    d = json.load(open(path))
    peak = d["fma_peak_gflops"]
    print(f"Measured f32 FMA peak: {peak:.0f} GFLOP/s ({d['threads']} threads), {d['date']}, {d['cpu']}\n")
    print("## Prefill (512 queries)\n")
    print("| context | flat ms | flat GFLOP/s | % of peak | HISA ms | speedup | IoU mean | IoU min | block-only IoU "
          "| needles flat/HISA | HISA stages ms (pool/blocks/tokens) | distinct blocks per 16-query tile |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in d["prefill"]:
        s = r["stages_ms"]
        print(f"| {ctx(r['context'])} | {r['flat_ms']:.1f} | {r['flat_gflops']:.1f} | {100 * r['flat_gflops'] / peak:.0f}% "
              f"| {r['hisa_ms']:.1f} | {r['speedup']:.2f}x | {r['iou_mean']:.4f} | {r['iou_min']:.4f} "
              f"| {r['block_only_iou_mean']:.3f} | {r['needle_recall_flat']:.2f}/{r['needle_recall_hisa']:.2f} "
              f"| {s['pool']:.1f}/{s['blocks']:.1f}/{s['tokens']:.1f} | {r['tile_union_blocks']:.0f} |")
    print("\n## Decode (batch 8, next_n 1)\n")
    print("| context | flat ms | flat GFLOP/s | HISA ms | speedup | IoU mean | IoU min | block-only IoU | first call (cache build) ms |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in d["decode"]:
        print(f"| {ctx(r['context'])} | {r['flat_ms']:.1f} | {r['flat_gflops']:.1f} | {r['hisa_ms']:.1f} | {r['speedup']:.2f}x "
              f"| {r['iou_mean']:.4f} | {r['iou_min']:.4f} | {r['block_only_iou_mean']:.3f} | {r['cache_build_ms']:.0f} |")
    print("\n## Top-k alone (k = 2048, random normal scores)\n")
    print("| rows x length | hilo radix select ms | GB/s of scores | `std::nth_element` ms | ratio |")
    print("| --- | --- | --- | --- | --- |")
    for r in d["topk"]:
        n = r["len"]
        length = f"{n // 1048576}M" if n >= 1048576 else f"{n // 1024}K"
        print(f"| {r['rows']} x {length} | {r['ms']:.2f} | {r['gbs']:.2f} | {r['nth_element_ms']:.2f} | {r['speedup']:.2f}x |")


if __name__ == "__main__":
    main(sys.argv[1])
