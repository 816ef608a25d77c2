"""The package's C++/OpenMP CPU library (`csrc/gate_mlp.cpp`), built on first use, and its
kernels: the causal-importance gate MLP, forward and backward (same function as
`causal_importance.plain_gate_mlp`, CPU float32 only, either alone (z) or followed by both leaky
hard sigmoids of `sigmoids` (lower, upper) in one pass), a stochastic mask applied to the inner
activations (`masks` holds the PyTorch expression and picks the path), and torch.rand's uniform
draws. Each has the bits of the PyTorch expression it replaces, or (checked at first use) is not
used.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.machinery
import importlib.util
import json
import os
import subprocess
import sys
import sysconfig
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import cast

import torch
from torch import Tensor

_SOURCE = Path(__file__).parent / "csrc" / "gate_mlp.cpp"
# Instruction-set flags per ATen CPU capability; the build cache keeps one build per capability.
_ISA_FLAGS = {
    "AVX512": ["-mavx2", "-mfma", "-mavx512f", "-mavx512dq", "-mavx512vl", "-mavx512bw"],
    "AVX2": ["-mavx2", "-mfma"],
}
_LDFLAGS = ["-fopenmp"]
# Written into the build folder once the library in it is complete; its presence lets later loads
# import the library without running torch's build step.
_BUILT_MARKER = "spd_built.json"


def _cflags() -> list[str]:
    capability = torch.backends.cpu.get_cpu_capability()
    return ["-O3", "-fopenmp", "-ffp-contract=fast", *_ISA_FLAGS.get(capability, [])]


def build_inputs(source: Path | None = None) -> dict[str, object]:
    """What determines the built library: the C++ source's content (not its path), the compiler
    and its flags, the CPU's instruction set, torch's exact build and the Python ABI. Paths of
    the checkout or the virtual environment are left out, so every checkout and every venv with
    the same torch and Python shares one build."""
    source = _SOURCE if source is None else source
    return {
        "source_sha256": hashlib.sha256(source.read_bytes()).hexdigest(),
        "cxx": os.environ.get("CXX", "c++"),
        "cflags": _cflags(),
        "ldflags": _LDFLAGS,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "torch": torch.__version__,
        "torch_git": torch.version.git_version,
        "cxx11_abi": bool(torch._C._GLIBCXX_USE_CXX11_ABI),
        "python_abi": f"{sys.implementation.cache_tag}{sysconfig.get_config_var('EXT_SUFFIX')}",
    }


def build_key(source: Path | None = None) -> str:
    canonical = json.dumps(build_inputs(source), sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def build_directory(source: Path | None = None) -> Path:
    """Where the kernel is built (its folder name is the extension's name): under
    $TORCH_EXTENSIONS_DIR or torch's default root, one folder per `build_key`."""
    from torch.utils.cpp_extension import get_default_build_root

    root = Path(os.environ.get("TORCH_EXTENSIONS_DIR") or get_default_build_root())
    capability = torch.backends.cpu.get_cpu_capability().lower()
    return root / f"spd_gate_mlp_{capability}_{build_key(source)}"


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


def _library_path(directory: Path) -> Path:
    from torch.utils.cpp_extension import LIB_EXT

    return directory / f"{directory.name}{LIB_EXT}"


def _import_built(directory: Path) -> ModuleType | None:
    """The library already built in `directory`, imported; None when it is not (completely) there."""
    library = _library_path(directory)
    if not ((directory / _BUILT_MARKER).is_file() and library.is_file()):
        return None
    loader = importlib.machinery.ExtensionFileLoader(directory.name, str(library))
    spec = importlib.util.spec_from_file_location(directory.name, library, loader=loader)
    assert spec is not None  # never None when given a loader
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def _build_and_import(source: Path) -> ModuleType:
    """Build from a copy of `source` inside the keyed folder, so the source path torch and ninja
    record is the same whichever checkout asked, and import the result."""
    from torch.utils.cpp_extension import load

    directory = build_directory(source)
    with _exclusive_build(directory):
        module = _import_built(directory)  # another process may have built it meanwhile
        if module is not None:
            return module
        copy = directory / source.name
        if not copy.is_file() or copy.read_bytes() != source.read_bytes():
            tmp = directory / f".{source.name}.{os.getpid()}.tmp"
            tmp.write_bytes(source.read_bytes())
            os.replace(tmp, copy)
        module = load(
            name=directory.name,
            sources=[str(copy)],
            extra_cflags=_cflags(),
            extra_ldflags=_LDFLAGS,
            build_directory=str(directory),
        )
        marker = directory / f".{_BUILT_MARKER}.{os.getpid()}.tmp"
        marker.write_text(json.dumps(build_inputs(source), indent=2, sort_keys=True) + "\n")
        os.replace(marker, directory / _BUILT_MARKER)
        return module


def load_kernel(source: Path | None = None) -> ModuleType:
    """The kernel built from `source` (default: the package's), built first if no checkout or
    environment with the same `build_key` has built it yet."""
    source = _SOURCE if source is None else source
    return _import_built(build_directory(source)) or _build_and_import(source)


@functools.cache
def _extension() -> ModuleType | None:
    try:
        return load_kernel()
    except (RuntimeError, OSError, ImportError, subprocess.CalledProcessError) as err:
        # no compiler, no ninja or a failed build: callers fall back to the eager path
        warnings.warn(
            f"C++ kernels (gate MLP, masks, uniform draws) unavailable, using PyTorch's: {err}",
            stacklevel=2,
        )
        return None


def compiled_kernel_available() -> bool:
    """Builds (first call only) and loads the kernel; False, with one warning, if that fails."""
    return _extension() is not None


class _CompiledGateMLP(torch.autograd.Function):
    """`compiled_gate_mlp`: forward h (batch, C), w1, b1, w2 (C, d_gate), b2 (C,) -> z (batch, C);
    backward grad_out (batch, C) -> the gradients of h, w1, b1, w2 and b2, each in its shape."""

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
        ext = cast(ModuleType, _extension())  # loaded: forward ran
        return tuple(ext.backward(grad_out, *ctx.saved_tensors))


def compiled_gate_mlp(h: Tensor, w1: Tensor, b1: Tensor, w2: Tensor, b2: Tensor) -> Tensor:
    """`plain_gate_mlp` via the C++ kernel. h: (batch, C); w1, b1, w2: (C, d_gate); b2: (C,).

    Requires `compiled_kernel_available()` and CPU float32 tensors (anything else raises); use the
    eager `fused_gate_mlp` otherwise.
    """
    return _CompiledGateMLP.apply(h, w1, b1, w2, b2)


class _CompiledCausalImportances(torch.autograd.Function):
    """`compiled_causal_importances`: forward h (batch, C), w1, b1, w2 (C, d_gate), b2 (C,) ->
    (lower, upper), each (batch, C); backward grad_lower, grad_upper ((batch, C) or None) -> the
    gradients of h, w1, b1, w2 and b2, each in its shape (none for alpha)."""

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
        ext = cast(ModuleType, _extension())  # loaded: forward ran
        grads = ext.causal_importances_backward(
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


class _CompiledMaskedInner(torch.autograd.Function):
    """`compiled_masked_inner`: forward h, g, u (..., C) -> (..., C); backward grad_out (..., C)
    -> the gradients of h and g, (..., C) each (none for u)."""

    @staticmethod
    def forward(ctx, h: Tensor, g: Tensor, u: Tensor) -> Tensor:  # type: ignore[override]
        ext = _extension()
        assert ext is not None, "call masked_inner_available(eager) first"
        ctx.save_for_backward(h, g, u)
        return ext.masked_inner_forward(h, g, u)

    @staticmethod
    def backward(ctx, grad_out: Tensor) -> tuple[Tensor | None, ...]:  # type: ignore[override]
        ext = cast(ModuleType, _extension())  # loaded: forward ran
        grad_h, grad_g = ext.masked_inner_backward(grad_out, *ctx.saved_tensors)
        return grad_h, grad_g, None


@functools.cache
def masked_inner_available(eager: Callable[[Tensor, Tensor, Tensor], Tensor]) -> bool:
    """Whether `compiled_masked_inner` can run and rounds as `eager`, the PyTorch expression it
    replaces (h, g, u -> (..., C)), does on this machine (checked once per expression, values and
    gradients, on random inputs: torch's addcmul uses a fused multiply-add where the CPU has one,
    and the kernel follows it only there)."""
    if not compiled_kernel_available():
        return False
    generator = torch.Generator().manual_seed(0)
    h, g, u, grad = (torch.randn(4099, generator=generator) for _ in range(4))
    g, u = g.sigmoid(), u.sigmoid()
    results = []
    for masked_inner in (eager, _CompiledMaskedInner.apply):
        h_, g_ = h.clone().requires_grad_(), g.clone().requires_grad_()
        out = masked_inner(h_, g_, u)
        out.backward(grad)
        results.append((out.detach(), h_.grad, g_.grad))
    return all(torch.equal(a, b) for a, b in zip(*results, strict=True))


def compiled_masked_inner(h: Tensor, g: Tensor, u: Tensor) -> Tensor:
    """h * (g + (1 - g) u) in one pass each way, and its gradients for h and g (u has none), with
    the bits of the PyTorch expression it stands in for (`masks`') where `masked_inner_available`
    of that expression holds, which this requires. h, g, u: (..., C), contiguous CPU float32 of
    one shape."""
    return _CompiledMaskedInner.apply(h, g, u)


@functools.cache
def compiled_uniform_available() -> bool:
    """Whether `uniform` can take the C++ path: the kernel loads and, checked once here, draws
    what torch.rand draws from a CPU generator and leaves the generator in the same state."""
    ext = _extension()
    if ext is None:
        return False
    ours, torchs = torch.Generator().manual_seed(0), torch.Generator().manual_seed(0)
    for n in (5, 1000, 623, 1, 1249, 4096):  # across the mt19937 state's 624-draw refills
        drawn = torch.empty(n)
        ext.uniform_(drawn, ours)
        if not torch.equal(drawn, torch.rand(n, generator=torchs)):
            return False
    return torch.equal(ours.get_state(), torchs.get_state())


def uniform(
    shape: torch.Size | tuple[int, ...], generator: torch.Generator, dtype: torch.dtype
) -> Tensor:
    """torch.rand(shape, generator=generator, dtype=dtype) on the generator's device: the same
    draws, through the C++ kernel for CPU float32 (torch draws those one by one). Returns a tensor
    of `shape`, e.g. (batch, C) for a mask's noise or (batch, n_features) for a batch."""
    if generator.device.type == "cpu" and dtype == torch.float32 and compiled_uniform_available():
        drawn = torch.empty(shape, dtype=dtype)
        cast(ModuleType, _extension()).uniform_(drawn, generator)
        return drawn
    return torch.rand(shape, generator=generator, device=generator.device, dtype=dtype)
