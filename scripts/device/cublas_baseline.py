#!/usr/bin/env python3
"""The baselines of issue 5 (LoRDS GPU kernels), measured once so kernel work has absolute targets: cuBLAS bf16
y = x . W^T (through torch.matmul, TF32 off) on the Llama-3-8B shapes and batches of the issue, and the card's
device-to-device copy bandwidth (the batch-1 ceiling). Each figure: 200 back-to-back calls captured in one CUDA
graph (Python dispatch would otherwise dominate small shapes; serving engines use graphs too), cycling through enough weight copies (>= 512 MB) that L2 never
holds the next weight; the median of 5 such runs.

    python3 scripts/device/cublas_baseline.py OUT.json      (on the device machine; torch there)

HILO_CUBLAS_BATCHES=64,256,1024 measures those batches only (device scripts comparing in the same call).
"""
import json
import os
import statistics
import sys
import time

import torch

SHAPES = [(4096, 4096), (1024, 4096), (14336, 4096), (4096, 14336)]  # (out, in)
BATCHES = [int(b) for b in os.environ.get("HILO_CUBLAS_BATCHES", "1,4,16,64,256,1024,4096").split(",")]


def timed(fn, calls=200, runs=5, graph=True):
    """fn(i) runs call i; returns the median over runs of the mean time per call (us)."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for i in range(20):
            fn(i)
    torch.cuda.current_stream().wait_stream(side)
    torch.cuda.synchronize()
    if graph:
        g = torch.cuda.CUDAGraph()
        with torch.cuda.graph(g):
            for i in range(calls):
                fn(i)
        run = g.replay
    else:
        def run():
            for i in range(calls):
                fn(i)
    run()
    torch.cuda.synchronize()
    times = []
    for _ in range(runs):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        run()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b) * 1e3 / calls)
    return statistics.median(times)


def main():
    torch.backends.cuda.matmul.allow_tf32 = False
    dev = torch.device("cuda")
    src = torch.empty(1 << 30, dtype=torch.uint8, device=dev)
    dst = torch.empty_like(src)
    copy_us = timed(lambda i: dst.copy_(src), calls=10, graph=False)
    copy_gbs = 2 * src.numel() / copy_us / 1e3  # read + write
    rows = []
    for out_f, in_f in SHAPES:
        copies = max(2, (512 << 20) // (2 * out_f * in_f) + 1)
        ws = [torch.randn(out_f, in_f, device=dev, dtype=torch.bfloat16) * 0.02 for _ in range(copies)]
        for batch in BATCHES:
            x = torch.randn(batch, in_f, device=dev, dtype=torch.bfloat16)
            us = timed(lambda i: torch.matmul(x, ws[i % copies].t()))
            bytes_moved = 2 * (out_f * in_f + batch * (in_f + out_f))
            rows.append({"out": out_f, "in": in_f, "batch": batch, "us": us,
                         "gbs": bytes_moved / us / 1e3, "tflops": 2 * batch * out_f * in_f / us / 1e6,
                         "bandwidth_floor_us": bytes_moved / (copy_gbs * 1e3)})
    result = {"date": time.strftime("%Y-%m-%d"), "card": torch.cuda.get_device_name(),
              "torch": torch.__version__, "cuda": torch.version.cuda, "copy_gbs": copy_gbs, "rows": rows}
    json.dump(result, open(sys.argv[1], "w"), indent=1)
    print(f"{result['card']}, torch {result['torch']}, CUDA {result['cuda']}, copy {copy_gbs:.0f} GB/s")
    print("| out x in | batch | cuBLAS bf16 us | GB/s | TFLOP/s | bytes / copy bandwidth us |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['out']}x{r['in']} | {r['batch']} | {r['us']:.1f} | {r['gbs']:.0f} | {r['tflops']:.1f} | "
              f"{r['bandwidth_floor_us']:.1f} |")


if __name__ == "__main__":
    main()
