"""Causal-importance gates: one tiny MLP per subcomponent, applied to its own inner activation.

    z_c = sum_k W2[c,k] * GELU(W1[c,k] * h_c + b1[c,k]) + b2[c]

The plain version materialises three B x C x d_gate tensors (and autograd keeps them), which makes
it the memory-traffic hot spot of an SPD step. Leaner versions compute the same function and keep
only h for the backward pass, recomputing the hidden layer there: on CPU, the C++ kernel of
`spd.kernels` (float32, built on first use) and, where it cannot be built, `fused_gate_mlp`, which
works batch chunk by batch chunk so that every B x C x d_gate intermediate lives in cache; on CUDA,
`compiled_gate_importances`, the gate MLP and both sigmoids through torch.compile, whose generated
kernels reduce the hidden layer where they compute it and recompute it in the backward pass.
`causal_importances` also applies the two leaky hard sigmoids, inside the kernel where it can.
"""

from __future__ import annotations

import functools
import math
import warnings

import torch
import torch.nn.functional as F
from einops import einsum
from torch import Tensor, nn

from spd.decomp.sigmoids import lower_leaky_hard_sigmoid, upper_leaky_hard_sigmoid
from spd.kernels import (
    compiled_causal_importances,
    compiled_gate_mlp,
    compiled_kernel_available,
)

# Rows of the batch per chunk: a chunk's C x d_gate hidden layer stays in the L2/L3 cache.
_TARGET_CHUNK_ELEMENTS = 1 << 18


def plain_gate_mlp(h: Tensor, w1: Tensor, b1: Tensor, w2: Tensor, b2: Tensor) -> Tensor:
    """Reference implementation. h: (batch, C); w1, b1, w2: (C, d_gate); b2: (C,)."""
    hidden = F.gelu(h.unsqueeze(-1) * w1 + b1)
    return einsum(hidden, w2, "batch C k, C k -> batch C") + b2


def _chunk_rows(h: Tensor, w1: Tensor) -> int:
    """Batch rows per chunk of h (batch, C) such that a chunk's hidden layer, (rows, C, d_gate)
    with w1: (C, d_gate), has about _TARGET_CHUNK_ELEMENTS entries."""
    return max(1, _TARGET_CHUNK_ELEMENTS // max(1, w1.numel()))


class _FusedGateMLP(torch.autograd.Function):
    """`fused_gate_mlp`: forward h (batch, C), w1, b1, w2 (C, d_gate), b2 (C,) -> z (batch, C);
    backward grad_out (batch, C) -> the gradients of h, w1, b1, w2 and b2, each in its shape."""

    @staticmethod
    def forward(ctx, h: Tensor, w1: Tensor, b1: Tensor, w2: Tensor, b2: Tensor) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(h, w1, b1, w2)
        out = torch.empty_like(h)
        rows = _chunk_rows(h, w1)
        for start in range(0, h.shape[0], rows):
            h_chunk = h[start : start + rows]
            hidden = F.gelu(torch.addcmul(b1, h_chunk.unsqueeze(-1), w1))
            out[start : start + rows] = einsum(hidden, w2, "batch C k, C k -> batch C")
        return out + b2

    @staticmethod
    def backward(ctx, grad_out: Tensor) -> tuple[Tensor | None, ...]:  # type: ignore[override]
        h, w1, b1, w2 = ctx.saved_tensors
        grad_h = torch.empty_like(h)
        grad_w1 = torch.zeros_like(w1)
        grad_b1 = torch.zeros_like(b1)
        grad_w2 = torch.zeros_like(w2)
        rows = _chunk_rows(h, w1)
        for start in range(0, h.shape[0], rows):
            h_chunk = h[start : start + rows]
            g_chunk = grad_out[start : start + rows]
            pre = torch.addcmul(b1, h_chunk.unsqueeze(-1), w1)
            grad_w2 += einsum(F.gelu(pre), g_chunk, "batch C k, batch C -> C k")
            grad_pre = torch.ops.aten.gelu_backward(g_chunk.unsqueeze(-1) * w2, pre)
            grad_w1 += einsum(grad_pre, h_chunk, "batch C k, batch C -> C k")
            grad_b1 += grad_pre.sum(dim=0)
            grad_h[start : start + rows] = einsum(grad_pre, w1, "batch C k, C k -> batch C")
        return grad_h, grad_w1, grad_b1, grad_w2, grad_out.sum(dim=0)


def fused_gate_mlp(h: Tensor, w1: Tensor, b1: Tensor, w2: Tensor, b2: Tensor) -> Tensor:
    """Same values as `plain_gate_mlp`, far less memory traffic (see module docstring).
    h: (batch, C); w1, b1, w2: (C, d_gate); b2: (C,). Returns z: (batch, C)."""
    return _FusedGateMLP.apply(h, w1, b1, w2, b2)


def fastest_gate_mlp(h: Tensor, w1: Tensor, b1: Tensor, w2: Tensor, b2: Tensor) -> Tensor:
    """The C++ kernel for CPU float32 when it builds, else the chunked eager version; plain on GPU.
    h: (batch, C); w1, b1, w2: (C, d_gate); b2: (C,). Returns z: (batch, C)."""
    if h.device.type != "cpu":
        return plain_gate_mlp(h, w1, b1, w2, b2)
    if h.dtype == torch.float32 and compiled_kernel_available():
        return compiled_gate_mlp(h, w1, b1, w2, b2)
    return fused_gate_mlp(h, w1, b1, w2, b2)


def gate_importances(
    h: Tensor, w1: Tensor, b1: Tensor, w2: Tensor, b2: Tensor, alpha: float
) -> tuple[Tensor, Tensor]:
    """The gate MLP and both leaky hard sigmoids as one expression of pointwise operations and one
    reduction over d_gate (what torch.compile fuses into a kernel that never stores the hidden
    layer). h: (batch, C); w1, b1, w2: (C, d_gate); b2: (C,). Returns lower and upper, (batch, C)."""
    hidden = F.gelu(h.unsqueeze(-1) * w1 + b1)
    z = (hidden * w2).sum(dim=-1) + b2
    return lower_leaky_hard_sigmoid(z, alpha), upper_leaky_hard_sigmoid(z, alpha)


@functools.cache
def _compiled_gate_importances():
    return torch.compile(gate_importances, fullgraph=True, dynamic=False)


class _Compilation:
    failed = False  # set by the first failure to compile: plain eager gates from then on


def compiled_gate_importances(
    h: Tensor, w1: Tensor, b1: Tensor, w2: Tensor, b2: Tensor, alpha: float
) -> tuple[Tensor, Tensor]:
    """`gate_importances` through torch.compile (compiled on the first call for each shape),
    equal to the plain version up to float rounding; where torch.compile fails (e.g. no Triton
    for the GPU), a warning and the eager `gate_importances` for the rest of the process.
    h: (batch, C); w1, b1, w2: (C, d_gate); b2: (C,). Returns lower and upper, (batch, C)."""
    if not _Compilation.failed:
        try:
            return _compiled_gate_importances()(h, w1, b1, w2, b2, alpha)
        except Exception as error:  # noqa: BLE001 - any compiler failure falls back to eager
            _Compilation.failed = True
            warnings.warn(
                f"torch.compile of the CI gates failed ({type(error).__name__}); "
                "running them eagerly",
                stacklevel=2,
            )
    return gate_importances(h, w1, b1, w2, b2, alpha)


def causal_importances(
    h: Tensor, w1: Tensor, b1: Tensor, w2: Tensor, b2: Tensor, alpha: float, fused: bool
) -> tuple[Tensor, Tensor]:
    """(lower, upper) leaky hard sigmoids of the gate MLP's z, without z in memory where possible.

    h: (batch, C); w1, b1, w2: (C, d_gate); b2: (C,). Returns lower and upper, each (batch, C).
    `fused` takes the C++ kernel (gate MLP and both sigmoids in one pass) for CPU float32 when it
    builds, `compiled_gate_importances` on CUDA, else `fastest_gate_mlp` then the eager sigmoids;
    `fused=False` takes `plain_gate_mlp`.
    """
    if fused and h.device.type == "cuda":
        return compiled_gate_importances(h, w1, b1, w2, b2, alpha)
    if (
        fused
        and h.device.type == "cpu"
        and h.dtype == torch.float32
        and compiled_kernel_available()
    ):
        return compiled_causal_importances(h, w1, b1, w2, b2, alpha)
    z = (fastest_gate_mlp if fused else plain_gate_mlp)(h, w1, b1, w2, b2)
    return lower_leaky_hard_sigmoid(z, alpha), upper_leaky_hard_sigmoid(z, alpha)


class CausalImportanceGates(nn.Module):
    """The C independent gate MLPs of one decomposed matrix; returns pre-sigmoid z (batch, C).

    Parameters: w1, b1, w2: (C, d_gate) and b2: (C,); with d_gate = 0, a linear map per
    subcomponent, w and b: (C,).

    `fused=False` forces the plain reference implementation (same values, more memory traffic).
    """

    def __init__(self, C: int, d_gate: int, fused: bool = True) -> None:
        super().__init__()
        self.d_gate = d_gate
        self.fused = fused
        if d_gate == 0:
            self.w = nn.Parameter(torch.randn(C) * math.sqrt(2))
            self.b = nn.Parameter(torch.zeros(C))
            return
        self.w1 = nn.Parameter(torch.randn(C, d_gate) * math.sqrt(2))
        self.b1 = nn.Parameter(torch.zeros(C, d_gate))
        self.w2 = nn.Parameter(torch.randn(C, d_gate) / math.sqrt(d_gate))
        self.b2 = nn.Parameter(torch.zeros(C))

    def forward(self, inner_acts: Tensor) -> Tensor:
        """inner_acts h = V x: (batch, C) -> pre-sigmoid z: (batch, C)."""
        if self.d_gate == 0:
            return inner_acts * self.w + self.b
        mlp = fastest_gate_mlp if self.fused else plain_gate_mlp
        return mlp(inner_acts, self.w1, self.b1, self.w2, self.b2)

    def causal_importances(self, inner_acts: Tensor, alpha: float) -> tuple[Tensor, Tensor]:
        """Lower- and upper-leaky causal importances (batch, C): the sigmoids of `forward`, of
        inner_acts: (batch, C)."""
        if self.d_gate == 0:
            z = self(inner_acts)
            return lower_leaky_hard_sigmoid(z, alpha), upper_leaky_hard_sigmoid(z, alpha)
        return causal_importances(inner_acts, self.w1, self.b1, self.w2, self.b2, alpha, self.fused)
