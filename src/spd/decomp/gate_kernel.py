"""C++/OpenMP CPU kernel for the causal-importance gate MLP, forward and backward.

Built on first use; same function as `causal_importance.plain_gate_mlp`, CPU float32 only, either
alone (z) or followed by both leaky hard sigmoids of `sigmoids` (lower, upper) in one pass.
"""

from __future__ import annotations

import contextlib
import functools
import os
import subprocess
import sys
import warnings
from collections.abc import Iterator
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


def build_directory() -> Path:
    """Where this CPU's kernel is built (its folder name is the extension's name): under
    $TORCH_EXTENSIONS_DIR or torch's default root, per torch and Python version (a build for one
    does not load in another) and per instruction set."""
    from torch.utils.cpp_extension import get_default_build_root

    root = Path(os.environ.get("TORCH_EXTENSIONS_DIR") or get_default_build_root())
    version = f"spd_torch{torch.__version__}_py{sys.version_info.major}{sys.version_info.minor}"
    return root / version / f"spd_gate_mlp_{torch.backends.cpu.get_cpu_capability().lower()}"


@contextlib.contextmanager
def _exclusive_build(directory: Path) -> Iterator[None]:
    """Holds an OS file lock on `directory` for the duration, and clears a stale torch lock.

    Torch serialises builds with a lock *file* that only its holder removes: a build killed part
    way (Ctrl-C, SIGKILL, a job scheduler's timeout) leaves it behind, and every later load then
    waits on it forever. An OS lock dies with its process, so while we hold ours no live build of
    this kernel holds torch's, and a torch lock file found then is stale.
    """
    directory.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # not POSIX: torch's own lock only
        yield
        return
    with open(directory / "spd_build.flock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        (directory / "lock").unlink(missing_ok=True)
        yield


@functools.cache
def _extension() -> ModuleType | None:
    from torch.utils.cpp_extension import load

    capability = torch.backends.cpu.get_cpu_capability()
    flags = ["-O3", "-fopenmp", "-ffp-contract=fast", *_ISA_FLAGS.get(capability, [])]
    directory = build_directory()
    try:
        with _exclusive_build(directory):
            return load(
                name=directory.name,
                sources=[str(_SOURCE)],
                extra_cflags=flags,
                extra_ldflags=["-fopenmp"],
                build_directory=str(directory),
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
