"""C++/OpenMP CPU kernel for the causal-importance gate MLP, forward and backward.

Built on first use; same function as `causal_importance.plain_gate_mlp`, CPU float32 only, either
alone (z) or followed by both leaky hard sigmoids of `sigmoids` (lower, upper) in one pass.
"""

from __future__ import annotations

import functools
import subprocess
import warnings
from pathlib import Path
from types import ModuleType

import torch
from torch import Tensor

_SOURCE = Path(__file__).parent / "csrc" / "gate_mlp.cpp"
# Instruction-set flags per ATen CPU capability; the build cache keeps one build per capability.
_ISA_FLAGS = {
    "AVX512": ["-mavx2", "-mfma", "-mavx512f", "-mavx512dq", "-mavx512vl", "-mavx512bw"],
    "AVX2": ["-mavx2", "-mfma"],
}


@functools.cache
def _extension() -> ModuleType | None:
    from torch.utils.cpp_extension import load

    capability = torch.backends.cpu.get_cpu_capability()
    flags = ["-O3", "-fopenmp", "-ffp-contract=fast", *_ISA_FLAGS.get(capability, [])]
    try:
        return load(
            name=f"spd_gate_mlp_{capability.lower()}",
            sources=[str(_SOURCE)],
            extra_cflags=flags,
            extra_ldflags=["-fopenmp"],
        )
    except (RuntimeError, OSError, ImportError, subprocess.CalledProcessError) as err:
        # no compiler, no ninja or a failed build: callers fall back to the eager path
        warnings.warn(f"gate MLP C++ kernel unavailable, using the eager path: {err}", stacklevel=2)
        return None


def compiled_kernel_available() -> bool:
    """Builds (first call only) and loads the kernel; False, with one warning, if that fails."""
    return _extension() is not None


class _CompiledGateMLP(torch.autograd.Function):
    @staticmethod
    def forward(  # type: ignore[override]
        ctx, h: Tensor, w1: Tensor, b1: Tensor, w2: Tensor, b2: Tensor
    ) -> Tensor:
        ext = _extension()
        assert ext is not None, "call compiled_kernel_available() first"
        ctx.save_for_backward(h, w1, b1, w2, b2)
        return ext.forward(h, w1, b1, w2, b2)

    @staticmethod
    def backward(ctx, grad_out: Tensor) -> tuple[Tensor, ...]:  # type: ignore[override]
        return tuple(_extension().backward(grad_out, *ctx.saved_tensors))


def compiled_gate_mlp(h: Tensor, w1: Tensor, b1: Tensor, w2: Tensor, b2: Tensor) -> Tensor:
    """`plain_gate_mlp` via the C++ kernel. h: (batch, C); w1, b1, w2: (C, d_gate); b2: (C,).

    Requires `compiled_kernel_available()` and CPU float32 tensors (anything else raises); use the
    eager `fused_gate_mlp` otherwise.
    """
    return _CompiledGateMLP.apply(h, w1, b1, w2, b2)


class _CompiledCausalImportances(torch.autograd.Function):
    @staticmethod
    def forward(  # type: ignore[override]
        ctx, h: Tensor, w1: Tensor, b1: Tensor, w2: Tensor, b2: Tensor, alpha: float
    ) -> tuple[Tensor, Tensor]:
        ext = _extension()
        assert ext is not None, "call compiled_kernel_available() first"
        lower, upper, z = ext.causal_importances_forward(h, w1, b1, w2, b2, alpha)
        ctx.save_for_backward(z, h, w1, b1, w2, b2)
        ctx.alpha = alpha
        ctx.set_materialize_grads(False)  # an unused output's gradient stays None, not zeros
        return lower, upper

    @staticmethod
    def backward(  # type: ignore[override]
        ctx, grad_lower: Tensor | None, grad_upper: Tensor | None
    ) -> tuple[Tensor | None, ...]:
        grads = _extension().causal_importances_backward(
            grad_lower, grad_upper, *ctx.saved_tensors, ctx.alpha
        )
        return (*grads, None)


def compiled_causal_importances(
    h: Tensor, w1: Tensor, b1: Tensor, w2: Tensor, b2: Tensor, alpha: float
) -> tuple[Tensor, Tensor]:
    """`compiled_gate_mlp` followed by `lower_leaky_hard_sigmoid` and `upper_leaky_hard_sigmoid`.

    Returns (lower, upper), each (batch, C); z itself is kept only for the backward pass. Same
    requirements as `compiled_gate_mlp`.
    """
    return _CompiledCausalImportances.apply(h, w1, b1, w2, b2, alpha)
