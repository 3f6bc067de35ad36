"""An independent Llama forward pass in numpy (float64), written from the transformers LlamaForCausalLM
definition, not from hilo's C++: the oracle that pinned the logits in tests/test_llama.cpp.

    python tests/tools/llama_reference.py ../shared/fixtures/tinylm --tokens 0:16 --positions 3,7,15 --ids 0,1,2,100

prints logits[position, id] for the first tokens of validation_tokens.safetensors as JSON.
"""
import argparse
import json
import struct
from pathlib import Path

import numpy as np


def read_safetensors(path):
    data = Path(path).read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        raw = data[base + a : base + b]
        dt = info["dtype"]
        if dt == "BF16":
            arr = (np.frombuffer(raw, np.uint16).astype(np.uint32) << 16).view(np.float32)
        elif dt == "F16":
            arr = np.frombuffer(raw, np.float16)
        elif dt == "F32":
            arr = np.frombuffer(raw, np.float32)
        elif dt == "I32":
            arr = np.frombuffer(raw, np.int32)
        else:
            raise ValueError(f"{name}: dtype {dt} not handled")
        out[name] = arr.reshape(info["shape"]).astype(np.float64 if dt != "I32" else np.int64)
    return out


def load_model(model_dir):
    model_dir = Path(model_dir)
    index = model_dir / "model.safetensors.index.json"
    files = sorted(set(json.loads(index.read_text())["weight_map"].values())) if index.exists() else ["model.safetensors"]
    weights = {}
    for f in files:
        weights.update(read_safetensors(model_dir / f))
    return json.loads((model_dir / "config.json").read_text()), weights


def rms_norm(x, w, eps):
    return w * (x / np.sqrt((x * x).mean(-1, keepdims=True) + eps))


def rope_inv_freq(cfg, d):
    p = cfg.get("rope_parameters") or cfg.get("rope_scaling") or {}
    theta = p.get("rope_theta", cfg.get("rope_theta", 10000.0))
    inv = 1.0 / theta ** (np.arange(0, d, 2) / d)
    kind = p.get("rope_type", p.get("type", "default"))
    if kind == "linear":
        inv = inv / p["factor"]
    elif kind == "llama3":
        old, lo, hi = p["original_max_position_embeddings"], p["low_freq_factor"], p["high_freq_factor"]
        wavelen = 2 * np.pi / inv
        smooth = (old / wavelen - lo) / (hi - lo)
        mid = (1 - smooth) * inv / p["factor"] + smooth * inv
        inv = np.where(wavelen > old / lo, inv / p["factor"], np.where(wavelen < old / hi, inv, mid))
    return inv


def rope(x, inv):
    # x [heads, n, d]; rotate-half layout
    n, d = x.shape[1], x.shape[2]
    ang = np.arange(n)[:, None] * inv[None, :]
    cos, sin = np.cos(np.concatenate([ang, ang], -1)), np.sin(np.concatenate([ang, ang], -1))
    rot = np.concatenate([-x[..., d // 2 :], x[..., : d // 2]], -1)
    return x * cos + rot * sin


def forward(cfg, w, tokens):
    H, nh, nkv = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_key_value_heads"]
    d = cfg.get("head_dim", H // nh)
    eps = cfg["rms_norm_eps"]
    inv = rope_inv_freq(cfg, d)
    n = len(tokens)
    x = w["model.embed_tokens.weight"][tokens]
    mask = np.triu(np.full((n, n), -np.inf), 1)
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        h = rms_norm(x, w[p + "input_layernorm.weight"], eps)
        q = (h @ w[p + "self_attn.q_proj.weight"].T).reshape(n, nh, d).transpose(1, 0, 2)
        k = (h @ w[p + "self_attn.k_proj.weight"].T).reshape(n, nkv, d).transpose(1, 0, 2)
        v = (h @ w[p + "self_attn.v_proj.weight"].T).reshape(n, nkv, d).transpose(1, 0, 2)
        q, k = rope(q, inv), rope(k, inv)
        k, v = np.repeat(k, nh // nkv, 0), np.repeat(v, nh // nkv, 0)
        s = q @ k.transpose(0, 2, 1) / np.sqrt(d) + mask
        s = np.exp(s - s.max(-1, keepdims=True))
        s /= s.sum(-1, keepdims=True)
        a = (s @ v).transpose(1, 0, 2).reshape(n, nh * d)
        x = x + a @ w[p + "self_attn.o_proj.weight"].T
        h = rms_norm(x, w[p + "post_attention_layernorm.weight"], eps)
        g = h @ w[p + "mlp.gate_proj.weight"].T
        u = h @ w[p + "mlp.up_proj.weight"].T
        x = x + (g / (1 + np.exp(-g)) * u) @ w[p + "mlp.down_proj.weight"].T
    x = rms_norm(x, w["model.norm.weight"], eps)
    head = w["model.embed_tokens.weight"] if cfg.get("tie_word_embeddings") else w["lm_head.weight"]
    return x @ head.T


def mean_nll(cfg, w, tokens, ctx):
    """Mean next-token NLL over non-overlapping windows of ctx tokens (hilo perplexity's protocol)."""
    total, count = 0.0, 0
    for start in range(0, len(tokens) - ctx + 1, ctx):
        t = np.asarray(tokens[start : start + ctx])
        logits = forward(cfg, w, t)
        mx = logits.max(-1, keepdims=True)
        lse = np.log(np.exp(logits - mx).sum(-1)) + mx[:, 0]
        total += float((lse[:-1] - logits[np.arange(ctx - 1), t[1:]]).sum())
        count += ctx - 1
    return total / count


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--tokens", default="0:16", help="slice of validation_tokens.safetensors")
    ap.add_argument("--positions", default="3,7,15")
    ap.add_argument("--ids", default="0,1,2,100")
    ap.add_argument("--nll", action="store_true", help="also print the mean next-token NLL of the slice")
    args = ap.parse_args()
    cfg, w = load_model(args.model)
    a, b = (int(v) for v in args.tokens.split(":"))
    tokens = read_safetensors(Path(args.model) / "validation_tokens.safetensors")["tokens"][a:b]
    logits = forward(cfg, w, tokens)
    pos = [int(v) for v in args.positions.split(",")]
    ids = [int(v) for v in args.ids.split(",")]
    out = {"tokens": tokens.tolist(), "logits": {p: [float(logits[p, i]) for i in ids] for p in pos}, "ids": ids}
    if args.nll:
        lse = np.log(np.exp(logits - logits.max(-1, keepdims=True)).sum(-1)) + logits.max(-1)
        out["mean_nll"] = float((lse[:-1] - logits[np.arange(len(tokens) - 1), tokens[1:]]).mean())
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
