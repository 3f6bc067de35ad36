"""LordsLinear: a quantized linear layer in hilo's packed format as an nn.Module.

Modes:
- frozen (inference): y = x @ W^.T through hilo's kernels (CUDA: bf16 fused kernels; CPU: f32) when no gradient is
  needed; otherwise the torch path below.
- PEFT (`peft=True`, LoRDS): the codes stay frozen, B and A are trainable f32 masters that enter the forward rounded
  to bf16 (as stored; the gradient passes straight through the rounding), so the trained module computes what the
  exported layer computes. The backward is explicit:
  with V = codebook[codes] and W^ = V * (B @ A), dX = dY @ W^, dS = (dY^T X) * V, dB = dS @ A^T, dA = B^T @ dS; W^ is
  recomputed in the backward instead of stored. export() rounds B, A to bf16: the result is plain hilo format.
- QAT (`qat=True`): a full-precision latent weight W is trained with B, A. Forward: S = B @ A, v = W / S, Q = the
  nearest codebook value of v (hilo's rule), W^ = Q * S, with a straight-through estimator on the rounding only:
  dW^/dW = 1 and dW^/dS = Q - v (exact given Q). export() re-assigns the codes from W and the bf16 factors.
"""
from __future__ import annotations

import weakref

import numpy as np
import torch
from torch import nn

from .. import lords
from . import ops


def _bf16_tensor(a) -> torch.Tensor:
    """A bf16 torch tensor from an ml_dtypes.bfloat16 numpy array (bits copied)."""
    return torch.from_numpy(np.ascontiguousarray(a).view(np.int16)).view(torch.bfloat16)


def _bf16_round(t: torch.Tensor) -> torch.Tensor:
    """The factor as it will be stored (bf16), in f32."""
    return t.to(torch.bfloat16).float()


class _LordsMatmul(torch.autograd.Function):
    """y = x @ (V * (B @ A)).T with W^ recomputed in the backward (PEFT: no gradient to the frozen codes). B and A
    enter rounded to bf16, as they are stored; their f32 masters receive the gradient (straight through)."""

    @staticmethod
    def forward(ctx, x, values, b, a):
        b, a = _bf16_round(b), _bf16_round(a)
        w = values * (b @ a)
        ctx.save_for_backward(x, values, b, a)
        return x @ w.to(x.dtype).T

    @staticmethod
    def backward(ctx, dy):
        x, values, b, a = ctx.saved_tensors
        gx = gb = ga = None
        w = values * (b @ a)
        if ctx.needs_input_grad[0]:
            gx = dy @ w.to(dy.dtype)
        if ctx.needs_input_grad[2] or ctx.needs_input_grad[3]:
            dw = dy.reshape(-1, dy.shape[-1]).T.float() @ x.reshape(-1, x.shape[-1]).float()
            ds = dw * values
            if ctx.needs_input_grad[2]:
                gb = ds @ a.T
            if ctx.needs_input_grad[3]:
                ga = b.T @ ds
        return gx, None, gb, ga


class LordsLinear(nn.Module):
    """A hilo QuantizedLinear (LoRDS or block-wise) as a module: y = x @ W^.T + bias."""

    def __init__(self, q: "lords.QuantizedLinear", bias: torch.Tensor | None = None, *, peft: bool = False):
        super().__init__()
        self.in_features, self.out_features = int(q.cols), int(q.rows)
        self.method, self.bits, self.block, self.rank = q.method, q.codebook.bits, q.block, q.rank
        self.codebook_kind = q.codebook.kind
        self.register_buffer("codes", torch.from_numpy(lords.unpack_codes(q)), persistent=False)
        self.register_buffer("codebook_values", torch.tensor(q.codebook.values, dtype=torch.float32), persistent=False)
        self.register_buffer("thresholds", torch.tensor(lords.code_thresholds(q.codebook), dtype=torch.float32),
                             persistent=False)
        if self.method == "lords":
            self.lords_b = nn.Parameter(_bf16_tensor(q.b).float(), requires_grad=peft)
            self.lords_a = nn.Parameter(_bf16_tensor(q.a).float(), requires_grad=peft)
        else:
            if peft:
                raise ValueError("LordsLinear: PEFT trains LoRDS factors; a block-wise layer has none")
            self.register_buffer("scales", _bf16_tensor(q.scales).float())
        self.bias = nn.Parameter(bias.detach().clone(), requires_grad=False) if bias is not None else None
        self.latent_weight: nn.Parameter | None = None
        self._device_layer = None  # (key, version) of the uploaded layer for the fused kernels

    # ---- construction ----
    @classmethod
    def from_linear(cls, linear: nn.Linear, *, method: str = "lords", bits: int = 4, codebook: str = "nf",
                    block: int = 64, rank: int = 0, steps: int = -1, device="cpu", peft: bool = False, **kw):
        q, _ = lords.quantize(linear.weight.detach().float().cpu(), method=method, bits=bits, codebook=codebook,
                              block=block, rank=rank, steps=steps, device=device, progress=False, **kw)
        module = cls(q, linear.bias, peft=peft)
        return module.to(linear.weight.device)

    def enable_qat(self, weight: torch.Tensor) -> None:
        """QAT: trains a full-precision latent weight (initialised from `weight`) together with B and A."""
        if self.method != "lords":
            raise ValueError("LordsLinear.enable_qat: QAT is implemented for LoRDS layers")
        if tuple(weight.shape) != (self.out_features, self.in_features):
            raise ValueError(f"LordsLinear.enable_qat: weight has shape {tuple(weight.shape)}, expected "
                             f"{(self.out_features, self.in_features)}")
        self.latent_weight = nn.Parameter(weight.detach().float().clone().to(self.lords_b.device))
        self.lords_b.requires_grad_(True)
        self.lords_a.requires_grad_(True)

    # ---- the weight ----
    def scale(self) -> torch.Tensor:
        """S [out, in] in f32: B @ A (LoRDS) or the block scales repeated along each block."""
        if self.method == "lords":
            b, a = self.lords_b, self.lords_a
            if torch.is_grad_enabled() and (b.requires_grad or a.requires_grad):  # bf16 as stored, straight through
                b = b + (_bf16_round(b) - b).detach()
                a = a + (_bf16_round(a) - a).detach()
            else:
                b, a = _bf16_round(b), _bf16_round(a)
            return b @ a
        return self.scales.repeat_interleave(self.block, dim=1)

    def _assign(self, v: torch.Tensor) -> torch.Tensor:
        """hilo's code rule: the number of thresholds strictly below v (ties to the lower code)."""
        return torch.bucketize(v.contiguous(), self.thresholds, right=False)

    def dequantized_weight(self) -> torch.Tensor:
        """W^ [out, in] f32 (QAT: from the latent weight with the straight-through rounding)."""
        s = self.scale()
        if self.latent_weight is not None:
            v = self.latent_weight / s
            q = self.codebook_values[self._assign(v.detach())]
            return (v + (q - v).detach()) * s
        return self.codebook_values[self.codes.long()] * s

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        needs_grad = torch.is_grad_enabled() and (x.requires_grad or any(p.requires_grad for p in self.parameters()))
        if self.latent_weight is not None:
            y = x @ self.dequantized_weight().to(x.dtype).T
        elif not needs_grad and self._fused_ok(x):
            y = ops.lords_matmul(x, self._compiled_key(x), self.out_features).to(x.dtype)
        elif self.method == "lords":
            values = self.codebook_values[self.codes.long()]
            y = _LordsMatmul.apply(x, values, self.lords_b, self.lords_a)
        else:
            y = x @ self.dequantized_weight().to(x.dtype).T
        return y + self.bias.to(y.dtype) if self.bias is not None else y

    # ---- hilo's kernels for inference ----
    def _fused_ok(self, x: torch.Tensor) -> bool:
        return x.is_cuda and ops.WITH_CUDA and x.shape[-1] == self.in_features

    def upload(self, device=None) -> "LordsLinear":
        """Uploads the layer for the fused kernels now (otherwise the first CUDA forward does). Call it, or run the
        model once, before torch.compile(fullgraph=True): the compiled graph holds the upload's id as a constant and
        does not re-check the parameters (a frozen layer's never change)."""
        device = torch.device(device) if device is not None else self.codes.device
        if device.type != "cuda":
            raise ValueError(f"LordsLinear.upload: device = {str(device)!r} must be a CUDA device (the fused kernels "
                             "run on CUDA; on the CPU the module computes with torch)")
        self._layer_key(device.index or 0)
        return self

    def _compiled_key(self, x: torch.Tensor) -> int:
        if torch.compiler.is_compiling() and self._device_layer is not None:
            return self._device_layer[0]
        return self._layer_key(x.device.index or 0)

    @torch.compiler.disable  # uploads: host work outside any graph (a graph break when compiling without upload())
    def _layer_key(self, device_index: int) -> int:
        version = tuple(int(p._version) for p in self.parameters()) + (device_index,)
        if self._device_layer is None or self._device_layer[1] != version:
            if self._device_layer is not None:
                ops.unregister_layer(self._device_layer[0])
            layer = lords.to_device(self.export(), device_index)
            key = ops.register_layer(layer)
            weakref.finalize(self, ops.unregister_layer, key)  # the upload goes with the module
            self._device_layer = (key, version)
        return self._device_layer[0]

    # ---- export ----
    def export(self) -> "lords.QuantizedLinear":
        """The layer in hilo's format: codes packed, factors (or scales) rounded to bf16. In QAT mode the codes are
        re-assigned from the latent weight with the bf16 factors' product, as hilo assigns them."""
        if self.method == "lords":
            b = self.lords_b.detach().to(torch.bfloat16).cpu()
            a = self.lords_a.detach().to(torch.bfloat16).cpu()
            codes = self.codes.cpu()
            if self.latent_weight is not None:
                s = b.float() @ a.float()
                v = self.latent_weight.detach().cpu() / s
                codes = torch.where(s == 0, torch.full_like(codes, self._zero_code()),
                                    self._assign(v.to(self.thresholds.device)).cpu().to(torch.uint8))
            return lords.from_arrays(method="lords", codebook=self.codebook_kind, bits=self.bits, block=self.block,
                                     rows=self.out_features, cols=self.in_features,
                                     qweight=lords.pack_codes(codes.numpy(), self.bits),
                                     b=b.view(torch.int16).numpy().view(np.uint16),
                                     a=a.view(torch.int16).numpy().view(np.uint16))
        scales = self.scales.detach().to(torch.bfloat16).cpu()
        return lords.from_arrays(method="blockwise", codebook=self.codebook_kind, bits=self.bits, block=self.block,
                                 rows=self.out_features, cols=self.in_features,
                                 qweight=lords.pack_codes(self.codes.cpu().numpy(), self.bits),
                                 scales=scales.view(torch.int16).numpy().view(np.uint16))

    def _zero_code(self) -> int:
        return int(torch.argmin(self.codebook_values.abs()).item())

    def trainable_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def extra_repr(self) -> str:
        kind = f"lords r{self.rank}" if self.method == "lords" else f"blockwise B{self.block}"
        mode = "qat" if self.latent_weight is not None else ("peft" if self.method == "lords" and
                                                            self.lords_b.requires_grad else "frozen")
        return (f"in_features={self.in_features}, out_features={self.out_features}, {self.codebook_kind}{self.bits} "
                f"{kind}, {mode}, bias={self.bias is not None}")
