"""hilo.torch: custom ops (opcheck: schema, fake implementation), LordsLinear's backward against autograd through
plain torch ops, QAT's straight-through gradients, export and checkpoint round trips; on CUDA (where present) the
ops against the CPU and CUDA-graph capture. Skipped where torch is not installed (CI installs no torch)."""
import numpy as np
import pytest

from package_util import import_hilo

hilo = import_hilo()
torch = pytest.importorskip("torch")
import hilo.torch as ht  # noqa: E402

cuda = pytest.mark.skipif(not (torch.cuda.is_available() and hilo.built_with_cuda()), reason="needs a CUDA GPU")


def layer(method="lords", bits=4, rows=64, cols=256, peft=False, seed=0, bias=True):
    g = torch.Generator().manual_seed(seed)
    lin = torch.nn.Linear(cols, rows, bias=bias)
    with torch.no_grad():
        lin.weight.copy_(torch.randn(rows, cols, generator=g) * 0.05)
    return lin, ht.LordsLinear.from_linear(lin, method=method, bits=bits, steps=10, rank=8 if method == "lords" else 0,
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
    cpu = {k: torch.from_numpy(np.asarray(v).view(np.uint8) if v.dtype.itemsize == 1 and v.dtype != np.int8 else v)
           for k, v in d.items() if k != "needles"}
    cpu["q"] = cpu["q"].view(torch.float8_e4m3fn)
    cpu["k"] = cpu["k"].view(torch.float8_e4m3fn)
    dev = {k: v.cuda() for k, v in cpu.items()}
    names = ("q", "w", "k", "k_scale", "ks", "ke")
    got = torch.ops.hilo.hisa_prefill(*(dev[n] for n in names), 512, 64, 16, True).cpu()
    want = torch.from_numpy(hilo.hisa.hisa_prefill(*(d[n] for n in names), topk=512, block=64, blocks_kept=16,
                                                   sorted=True))
    # Scores differ from the CPU's by the tensor cores' rounding: compare the sets row by row.
    same = sum(set(a.tolist()) == set(b.tolist()) for a, b in zip(got, want))
    assert same >= 0.95 * got.shape[0]
    _, m = layer(rows=256, cols=512)
    m = m.cuda()
    x = torch.randn(4, 512, device="cuda", dtype=torch.bfloat16)
    with torch.no_grad():
        y = m(x)
        ref = torch.from_numpy(hilo.lords.matmul(m.export(), x.float().cpu().numpy())) + m.bias.cpu()
        torch.testing.assert_close(y.float().cpu(), ref, rtol=2e-2, atol=2e-2)
        graph = torch.cuda.CUDAGraph()
        out = torch.empty_like(y)
        with torch.cuda.graph(graph):
            out.copy_(m(x))
        graph.replay()
        torch.cuda.synchronize()
        assert torch.equal(out, y)
