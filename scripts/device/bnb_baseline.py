#!/usr/bin/env python3
"""bitsandbytes NF4 on issue 5's shapes and batches, timed like cuBLAS (cublas_baseline.py: 200 calls in one CUDA
graph cycling through >= 512 MB of weights, median of 5 runs), so the LoRDS and block-wise kernels can be read against
the NF4 kernel QLoRA users run and the one the LoRDS paper compared with ("about 8% slower than bitsandbytes NF4").

Each layer: random bf16 weights (out x in, std 0.02) quantized by `bitsandbytes.functional.quantize_4bit` (NF4,
blocksize 64 like our block-wise B=64, bf16 compute), then `bitsandbytes.matmul_4bit(x, w.t(), quant_state)` under
no_grad: bitsandbytes' own dispatch (its fused gemm_4bit kernel, or dequantize + cuBLAS) picks the path. Two
formats: plain (fp32 absmax: 4.5 bits per weight) and double-quantized (QLoRA's `bnb_4bit_use_double_quant`: 8-bit
absmax in blocks of 256, ~4.13 bits). Every layer's output is checked once against x . dequantize_4bit(w)^T in f32.

    python3 scripts/device/bnb_baseline.py OUT.json      (on the device machine; torch there)

bitsandbytes comes from the environment, else from build-carry/bnb.txz (scripts/device/pack_bnb.sh), unpacked to
/tmp/hilo-bnb. HILO_BNB_BATCHES (1,4,16,64,256,1024) picks the batches.
"""
import json
import os
import subprocess
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cublas_baseline import SHAPES, timed  # noqa: E402  (one timing method for every baseline)

BATCHES = [int(b) for b in os.environ.get("HILO_BNB_BATCHES", "1,4,16,64,256,1024").split(",")]
FORMATS = {"bnb-nf4": False, "bnb-nf4-dq": True}  # method name -> compress_statistics (double quantization)


def import_bnb():
    try:
        import bitsandbytes
        return bitsandbytes
    except ImportError:
        pass
    carry = os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../build-carry/bnb.txz")
    site = "/tmp/hilo-bnb"
    if not os.path.isdir(os.path.join(site, "bitsandbytes")):
        if not os.path.exists(carry):
            sys.exit(f"bitsandbytes is not installed and {carry} is missing (run scripts/device/pack_bnb.sh)")
        os.makedirs(site, exist_ok=True)
        subprocess.run(["tar", "-xJf", carry, "-C", site], check=True)
    sys.path.insert(0, site)
    import bitsandbytes
    return bitsandbytes


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    bnb = import_bnb()
    import bitsandbytes.functional as F
    dev = torch.device("cuda")
    rows = []
    torch.manual_seed(0)
    for out_f, in_f in SHAPES:
        for method, double_quant in FORMATS.items():
            copies = max(2, (512 << 20) // (out_f * in_f // 2) + 1)
            weights = []
            for _ in range(copies):
                w = torch.randn(out_f, in_f, device=dev, dtype=torch.bfloat16) * 0.02
                weights.append(F.quantize_4bit(w, blocksize=64, compress_statistics=double_quant, quant_type="nf4"))
                del w
            qw0, qs0 = weights[0]
            w0 = F.dequantize_4bit(qw0, qs0).float()
            for batch in BATCHES:
                x = torch.randn(batch, in_f, device=dev, dtype=torch.bfloat16)
                with torch.no_grad():
                    y = bnb.matmul_4bit(x, qw0.t(), quant_state=qs0).float()
                    ref = x.float() @ w0.t()
                    rel = ((y - ref).norm() / ref.norm()).item()
                    if not rel < 1e-2:
                        sys.exit(f"{method} {out_f}x{in_f} batch {batch}: relative error {rel:.3g} against "
                                 "dequantize_4bit in f32")

                    def call(i, x=x):
                        qw, qs = weights[i % copies]
                        return bnb.matmul_4bit(x, qw.t(), quant_state=qs)
                    try:
                        us, graph = timed(call), True
                    except RuntimeError as e:  # a path that cannot be captured: timed call by call instead
                        print(f"{method}: no CUDA graph ({e}); timing without", flush=True)
                        us, graph = timed(call, graph=False), False
                bits = 4 + (8 / 64 + 32 / (64 * 256) if double_quant else 32 / 64)
                bytes_moved = out_f * in_f * bits / 8 + 2 * batch * (in_f + out_f)
                rows.append({"out": out_f, "in": in_f, "batch": batch, "method": method, "us": us,
                             "bits_per_weight": bits, "gbs": bytes_moved / us / 1e3,
                             "tflops": 2 * batch * out_f * in_f / us / 1e6, "rel_err_vs_dequant": rel,
                             "cuda_graph": graph})
                print(f"{method} {out_f}x{in_f} batch {batch}: {us:.1f} us (rel err {rel:.1e})", flush=True)
            del weights, w0
            torch.cuda.empty_cache()
    result = {"date": time.strftime("%Y-%m-%d"), "card": torch.cuda.get_device_name(), "torch": torch.__version__,
              "cuda": torch.version.cuda, "bitsandbytes": bnb.__version__, "rows": rows}
    tmp = sys.argv[1] + ".tmp"
    json.dump(result, open(tmp, "w"), indent=1)
    os.replace(tmp, sys.argv[1])
    print(f"{result['card']}, torch {result['torch']}, CUDA {result['cuda']}, bitsandbytes {result['bitsandbytes']}")


if __name__ == "__main__":
    main()
