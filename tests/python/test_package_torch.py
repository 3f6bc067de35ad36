"""hilo.torch: custom ops (opcheck: schema, fake implementation), LordsLinear's backward against autograd through
plain torch ops, QAT's straight-through gradients, export and checkpoint round trips; on CUDA (where present) the
ops against the CPU and CUDA-graph capture. Skipped where torch is not installed (CI installs no torch)."""
import json
import shutil
import subprocess

import numpy as np
import pytest
from safetensors.numpy import save_file

from package_util import import_hilo

hilo = import_hilo()
torch = pytest.importorskip("torch")
import hilo.torch as ht  # noqa: E402

cuda = pytest.mark.skipif(not (torch.cuda.is_available() and hilo.built_with_cuda()), reason="needs a CUDA GPU")


def layer(method="lords", bits=4, rows=64, cols=256, peft=False, seed=0, bias=True, rank=8):
    g = torch.Generator().manual_seed(seed)
    lin = torch.nn.Linear(cols, rows, bias=bias)
    with torch.no_grad():
        lin.weight.copy_(torch.randn(rows, cols, generator=g) * 0.05)
    return lin, ht.LordsLinear.from_linear(lin, method=method, bits=bits, steps=10, rank=rank if method == "lords" else 0,
                                           peft=peft)


def test_ops_pass_opcheck():
    g = torch.Generator().manual_seed(1)
    scores = torch.randn(4, 300, generator=g)
    torch.library.opcheck(torch.ops.hilo.topk, (scores, 16))
    S, N, H, D = 8, 256, 4, 32
    q = torch.randn(S, H, D, generator=g)
    k = torch.randn(N, D, generator=g)
    args = (q, torch.randn(S, H, generator=g), k, torch.ones(N), torch.zeros(S, dtype=torch.int32),
            torch.full((S,), N, dtype=torch.int32))
    torch.library.opcheck(torch.ops.hilo.flat_prefill, args + (32,))
    torch.library.opcheck(torch.ops.hilo.hisa_prefill, args + (32, 64, 2))
    a = torch.ops.hilo.hisa_prefill(*args, 32, 64, 4, True)  # every block kept: equals flat
    b = torch.ops.hilo.flat_prefill(*args, 32, True)
    assert torch.equal(a, b)


def test_peft_backward_matches_autograd_reference():
    _, m = layer(peft=True)
    x = torch.randn(3, 5, 256, requires_grad=True)
    y = m(x)
    (y * torch.linspace(-1, 1, 64)).sum().backward()
    b = m.lords_b.detach().clone().requires_grad_()
    a = m.lords_a.detach().clone().requires_grad_()
    x2 = x.detach().clone().requires_grad_()
    rb = b + (b.to(torch.bfloat16).float() - b).detach()  # bf16 as stored, straight-through
    ra = a + (a.to(torch.bfloat16).float() - a).detach()
    w = m.codebook_values[m.codes.long()] * (rb @ ra)
    y2 = x2 @ w.T + m.bias
    (y2 * torch.linspace(-1, 1, 64)).sum().backward()
    torch.testing.assert_close(y, y2, rtol=1e-5, atol=1e-6)
    for got, want in ((m.lords_b.grad, b.grad), (m.lords_a.grad, a.grad), (x.grad, x2.grad)):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-6)
    assert m.trainable_parameters() == 8 * (64 + 256)


def test_qat_gradients_are_straight_through_with_exact_scale_gradient():
    lin, m = layer()
    m.enable_qat(lin.weight)
    w_hat = m.dequantized_weight()
    upstream = torch.randn_like(w_hat)
    (w_hat * upstream).sum().backward()
    rb, ra = m.lords_b.detach().to(torch.bfloat16).float(), m.lords_a.detach().to(torch.bfloat16).float()
    s = rb @ ra
    v = m.latent_weight.detach() / s
    qv = m.codebook_values[torch.bucketize(v, m.thresholds)]
    torch.testing.assert_close(m.latent_weight.grad, upstream)  # dW^/dW = 1
    ds = upstream * (qv - v)  # dW^/dS = Q - v
    torch.testing.assert_close(m.lords_b.grad, ds @ ra.T, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(m.lords_a.grad, rb.T @ ds, rtol=1e-4, atol=1e-6)
    # Exported codes follow hilo's rule on the bf16 factors: the exported layer reproduces W^ up to bf16 rounding.
    q = m.export()
    deq = torch.from_numpy(hilo.lords.dequantize(q))
    torch.testing.assert_close(deq, m.dequantized_weight().detach(), rtol=0.02, atol=2e-3)


@pytest.mark.parametrize("method", ["lords", "blockwise"])
def test_export_is_plain_hilo_format(method):
    _, m = layer(method=method, peft=method == "lords")
    if method == "lords":
        with torch.no_grad():
            m.lords_b.mul_(1.01)  # a "trained" factor
    x = torch.randn(4, 256)
    q = m.export()
    with torch.no_grad():
        torch.testing.assert_close(m(x), ht.LordsLinear(q, m.bias)(x))  # the trained module is the exported one
        m_b = ht.LordsLinear(q, m.bias)
        torch.testing.assert_close(m_b(x), torch.from_numpy(hilo.lords.matmul(q, x.numpy())) + m.bias,
                                   rtol=1e-4, atol=1e-5)


class TinyBlock(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.q_proj = torch.nn.Linear(128, 128, bias=False)
        self.up_proj = torch.nn.Linear(128, 256, bias=True)
        self.norm = torch.nn.LayerNorm(256)
        self.lm_head = torch.nn.Linear(256, 32, bias=False)

    def forward(self, x):
        return self.lm_head(self.norm(self.up_proj(self.q_proj(x))))


def test_quantize_model_save_load_round_trip(tmp_path):
    torch.manual_seed(3)
    model = TinyBlock()
    reports = ht.quantize_model(model, bits=4, steps=5, progress=False)
    assert set(reports) == {"q_proj", "up_proj"} and isinstance(model.lm_head, torch.nn.Linear)
    x = torch.randn(2, 128)
    with torch.no_grad():
        want = model(x)
    ht.save_quantized(model, str(tmp_path / "q"))
    summary = hilo.lords.inspect_checkpoint(str(tmp_path / "q"))
    assert summary["quantized_layers"] == 2
    fresh = ht.load_quantized(TinyBlock(), str(tmp_path / "q"))
    with torch.no_grad():
        torch.testing.assert_close(fresh(x), want)


@cuda
def test_cuda_ops_match_cpu_and_capture_in_graphs():
    d = hilo.hisa.synthetic_prefill(context=4096, queries=64, heads=64, dim=128, seed=9)
    dev = as_torch(d, "cuda")
    names = ("q", "w", "k", "k_scale", "ks", "ke")
    got = torch.ops.hilo.hisa_prefill(*(dev[n] for n in names), 512, 64, 16, True).cpu()
    want = torch.from_numpy(hilo.hisa.hisa_prefill(*(d[n] for n in names), topk=512, block=64, blocks_kept=16,
                                                   sorted=True))
    # Scores differ from the CPU's by the tensor cores' rounding: compare the sets row by row.
    assert same_set_fraction(got, want) >= 0.95
    _, m = layer(rows=256, cols=512)
    expect_cuda_layer_matches_cpu_and_replays(m.cuda(), torch.randn(4, 512, device="cuda", dtype=torch.bfloat16))


def expect_cuda_layer_matches_cpu_and_replays(m, x):
    """The fused CUDA forward of `m` against the CPU matmul of its export, then captured in a CUDA graph: every replay
    into a NaN-filled output gives the direct call's bits."""
    with torch.no_grad():
        y = m(x)
        ref = torch.from_numpy(hilo.lords.matmul(m.export(), x.float().cpu().numpy())) + m.bias.cpu()
        torch.testing.assert_close(y.float().cpu(), ref, rtol=2e-2, atol=2e-2)
        graph = torch.cuda.CUDAGraph()
        out = torch.full_like(y, float("nan"))
        with torch.cuda.graph(graph):
            out.copy_(m(x))
        for _ in range(3):
            graph.replay()
        torch.cuda.synchronize()
        assert torch.equal(out, y)


@cuda
def test_cuda_batch1_wide_rank_captures_in_graphs():
    # Batch 1 at ranks 33-64 runs the wgmma GEMV behind the x * A prepass (stream-ordered scratch + programmatic
    # dependent launch); torch's graph capture must record both.
    _, m = layer(rows=512, cols=1024, rank=48)
    expect_cuda_layer_matches_cpu_and_replays(m.cuda(), torch.randn(1, 1024, device="cuda", dtype=torch.bfloat16))


def quantized_tiny_block(seed=3):
    torch.manual_seed(seed)
    model = TinyBlock()
    ht.quantize_model(model, bits=4, steps=5, progress=False)
    return model


def test_upload_refuses_a_device_without_the_fused_kernels():
    _, m = layer()
    with pytest.raises(ValueError, match="upload: device = 'cpu'"):
        m.upload()  # the module is on the CPU
    if not hilo.built_with_cuda():
        with pytest.raises(hilo.HiloError, match="without CUDA"):
            m.upload("cuda:0")


def test_torch_compile_fullgraph_matches_eager():
    model = quantized_tiny_block()
    x = torch.randn(2, 128)
    with torch.no_grad():
        want = model(x)
        got = torch.compile(model, fullgraph=True)(x)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    scores = torch.randn(4, 300)

    def pick(s):
        return torch.ops.hilo.topk(s * 2, 16, True)

    assert torch.equal(torch.compile(pick, fullgraph=True)(scores), pick(scores))


def test_torch_compile_peft_step_matches_eager():
    _, eager = layer(peft=True)
    _, compiled = layer(peft=True)
    x = torch.randn(6, 256)
    weight = torch.linspace(-1, 1, 64)
    (eager(x) * weight).sum().backward()
    step = torch.compile(lambda inp: (compiled(inp) * weight).sum(), fullgraph=True)
    step(x).backward()
    for a, b in ((eager.lords_b, compiled.lords_b), (eager.lords_a, compiled.lords_a)):
        torch.testing.assert_close(b.grad, a.grad, rtol=1e-4, atol=1e-6)


def as_torch(d: dict, device="cpu") -> dict:
    """synthetic_* output as torch tensors (fp8 arrays as float8_e4m3fn views)."""
    out = {}
    for name, v in d.items():
        if name == "needles":
            continue
        fp8 = v.dtype.itemsize == 1 and v.dtype not in (np.int8, np.uint8)
        t = torch.from_numpy(np.ascontiguousarray(v).view(np.uint8) if fp8 else v)
        out[name] = (t.view(torch.float8_e4m3fn) if fp8 else t).to(device)
    return out


def same_set_fraction(a: torch.Tensor, b: torch.Tensor) -> float:
    return sum(set(x.tolist()) == set(y.tolist()) for x, y in zip(a.cpu(), b.cpu())) / a.shape[0]


def decode_scores(t: dict, row: int, next_n: int) -> torch.Tensor:
    """Exact scores of decode query `row` against the tokens it sees (spec section 3's paged layout: per page 64
    fp8 key rows, then their 64 f32 scales), in the reference's definition sum_h w_h relu(q_h . k scale)."""
    b, j = divmod(row, next_n)
    pages = t["kv_cache"].shape[0]
    cache = t["kv_cache"].reshape(pages, -1)
    keys = cache[:, : 64 * 128].reshape(pages, 64, 128).view(torch.float8_e4m3fn).float()
    scales = cache[:, 64 * 128 :].contiguous().view(torch.float32).reshape(pages, 64)
    pos = torch.arange(int(t["context_lens"][b]) - next_n + j + 1)
    page = t["block_table"][b].long()[pos // 64]
    logits = (keys[page, pos % 64] @ t["q"][b, j].float().T) * scales[page, pos % 64, None]
    return (torch.relu(logits) * t["w"][row]).sum(1)


def assert_same_up_to_ties(gpu: torch.Tensor, cpu_idx: torch.Tensor, t: dict, next_n: int, rel: float = 2e-3):
    """Row by row, the GPU's index set equals the CPU's except for keys whose exact score ties with the CPU's k-th
    score within `rel` of the row's largest |score| (fp8 tensor-core accumulation order and precision; the C++ GPU
    tests use the same rule)."""
    for row, (g, c) in enumerate(zip(gpu.cpu(), cpu_idx)):
        g, c = set(g.tolist()) - {-1}, set(c.tolist()) - {-1}
        assert len(g) == len(c), row
        if g == c:
            continue
        scores = decode_scores(t, row, next_n)
        kth, tol = scores[sorted(c)].min(), rel * scores.abs().max()
        for i in g ^ c:
            assert abs(scores[i] - kth) <= tol, (row, i, float(scores[i]), float(kth))


@cuda
def test_cuda_decode_topk_and_pool_keys_match_cpu():
    d = hilo.hisa.synthetic_decode(context=5000, batch=3, next_n=2, heads=64, dim=128, seed=11)
    cpu, dev = as_torch(d), as_torch(d, "cuda")
    names = ("q", "w", "kv_cache", "block_table", "context_lens")
    flat_cpu = hilo.hisa.flat_decode(*(cpu[n] for n in names), topk=512)
    flat_gpu, slots = hilo.hisa.flat_decode(*(dev[n] for n in names), topk=512, slots=True)
    blocks = (dev["block_table"].shape[1] * 64 + 127) // 128
    cache = hilo.hisa.PooledKeyCache(device="cuda", max_batch=3, max_blocks=blocks)
    hisa_gpu = hilo.hisa.hisa_decode(*(dev[n] for n in names), cache, topk=512, blocks_kept=blocks)
    # Tensor-core rounding may swap near-ties with the CPU (rows differ only there); HISA keeping every block equals
    # flat on the device.
    assert_same_up_to_ties(flat_gpu, flat_cpu, cpu, next_n=2)
    assert same_set_fraction(hisa_gpu, flat_gpu) == 1.0
    pages = dev["block_table"].long().repeat_interleave(2, dim=0).gather(1, (flat_gpu.long() // 64).clamp(min=0))
    assert torch.equal(slots, torch.where(flat_gpu < 0, -1, pages * 64 + flat_gpu % 64).int())
    scores = torch.randn(64, 20000, device="cuda")
    assert torch.equal(hilo.hisa.topk(scores, 2048, sorted=True).cpu(), hilo.hisa.topk(scores.cpu(), 2048, sorted=True))
    k = torch.randn(1000, 128).to(torch.float8_e4m3fn)
    k_scale = torch.rand(1000) + 0.5
    codes, scale = hilo.hisa.pool_keys(k.cuda(), k_scale.cuda())
    want_codes, want_scale = hilo.hisa.pool_keys(k, k_scale)
    assert torch.equal(codes.cpu().view(torch.uint8), want_codes.view(torch.uint8))
    assert torch.equal(scale.cpu(), want_scale)


@cuda
def test_cuda_torch_compile_and_cuda_graphs():
    model = quantized_tiny_block().cuda()
    for m in model.modules():
        if isinstance(m, ht.LordsLinear):
            m.upload()
    x = torch.randn(4, 128, device="cuda", dtype=torch.bfloat16)
    model = model.to(torch.bfloat16)
    with torch.no_grad():
        want = model(x)
        for mode in ("default", "reduce-overhead"):  # reduce-overhead replays CUDA graphs
            compiled = torch.compile(model, fullgraph=True, mode=mode)
            for _ in range(3):
                got = compiled(x)
            torch.testing.assert_close(got, want, rtol=1e-2, atol=1e-2)
    d = as_torch(hilo.hisa.synthetic_prefill(context=4096, queries=64, heads=64, dim=128, seed=5), "cuda")
    args = tuple(d[n] for n in ("q", "w", "k", "k_scale", "ks", "ke"))

    def select(*a):
        return torch.ops.hilo.hisa_prefill(*a, 512, 64, 16, True, False)

    assert torch.equal(torch.compile(select, fullgraph=True)(*args), select(*args))


def hilo_cli():
    from conftest import build_dir
    built = build_dir() / "cli" / "hilo"
    return str(built) if built.exists() else shutil.which("hilo")


def test_saved_hugging_face_model_gives_the_same_perplexity_in_the_cli(tmp_path):
    transformers = pytest.importorskip("transformers")
    cli = hilo_cli()
    if cli is None:
        pytest.skip("the hilo CLI is not built")
    config = transformers.LlamaConfig(vocab_size=64, hidden_size=128, intermediate_size=256, num_hidden_layers=2,
                                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256)
    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(config).float().eval()
    ht.quantize_model(model, bits=4, steps=5, progress=False)
    ht.save_quantized(model, str(tmp_path / "q"))
    tokens = torch.randint(0, 64, (4 * 64,), generator=torch.Generator().manual_seed(1), dtype=torch.int32)
    save_file({"tokens": tokens.numpy()}, str(tmp_path / "tokens.safetensors"))
    with torch.no_grad():
        nll = sum(model(w[None].long(), labels=w[None].long()).loss.item() for w in tokens.view(4, 64)) / 4
    result = subprocess.run([cli, "perplexity", str(tmp_path / "q"), "--tokens", str(tmp_path / "tokens.safetensors"),
                             "--ctx", "64", "--json"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["mean_nll"] == pytest.approx(nll, rel=1e-4)
