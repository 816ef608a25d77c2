"""The C++ kernels (`spd.kernels`) against the PyTorch expressions they replace.

The gate MLP, both entry points (z alone, and z squashed by both leaky hard sigmoids): values, all
five gradients, determinism. The stochastic mask and the uniform draws: the same bits. The build:
its cache, its lock, a failed build.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import Tensor

from spd import kernels
from spd.decomp import masks
from spd.decomp.causal_importance import CausalImportanceGates, plain_gate_mlp
from spd.decomp.sigmoids import lower_leaky_hard_sigmoid, upper_leaky_hard_sigmoid
from spd.kernels import (
    build_directory,
    compiled_causal_importances,
    compiled_gate_mlp,
    compiled_kernel_available,
    compiled_masked_inner,
    uniform,
)

pytestmark = pytest.mark.skipif(
    not compiled_kernel_available(), reason="C++ gate kernel could not be built (compiler/ninja?)"
)


def _inputs(B: int, C: int, K: int, seed: int = 0) -> list[Tensor]:
    gen = torch.Generator().manual_seed(seed)
    h = 2 * torch.randn(B, C, generator=gen)
    w1 = 1.4 * torch.randn(C, K, generator=gen)
    b1 = 0.5 * torch.randn(C, K, generator=gen)
    w2 = torch.randn(C, K, generator=gen) / K**0.5
    b2 = torch.randn(C, generator=gen)
    return [h, w1, b1, w2, b2]


def _value_and_grads(fn, inputs: list[Tensor], grad_out: Tensor) -> list[Tensor]:
    leaves = [t.clone().requires_grad_() for t in inputs]
    out = fn(*leaves)
    out.backward(grad_out)
    return [out.detach()] + [leaf.grad for leaf in leaves]


@pytest.mark.parametrize(
    "B,C,K", [(4096, 200, 16), (1003, 37, 16), (517, 20, 16), (129, 1, 16), (77, 5, 1), (33, 1, 1)]
)
def test_matches_plain_gate_mlp(B: int, C: int, K: int) -> None:
    inputs = _inputs(B, C, K)
    grad_out = torch.randn(B, C, generator=torch.Generator().manual_seed(1))
    expected = _value_and_grads(plain_gate_mlp, inputs, grad_out)
    actual = _value_and_grads(compiled_gate_mlp, inputs, grad_out)
    for name, a, e in zip(["z", "h", "w1", "b1", "w2", "b2"], actual, expected):
        assert a.shape == e.shape and a.dtype == e.dtype, name
        scale = e.abs().max().item()
        torch.testing.assert_close(
            a, e, rtol=1e-5, atol=1e-5 * scale, msg=lambda m, name=name: f"{name}: {m}"
        )


# several batch chunks (512 rows each), the last one partial; one and several subcomponent blocks
DETERMINISM_SHAPES = [(1000, 45), (2500, 20), (700, 7)]


@pytest.mark.parametrize("B,C", DETERMINISM_SHAPES)
def test_deterministic_and_thread_count_independent(B: int, C: int) -> None:
    inputs = _inputs(B, C, 16)
    grad_out = torch.randn(B, C)
    threads = torch.get_num_threads()
    try:
        first = _value_and_grads(compiled_gate_mlp, inputs, grad_out)
        second = _value_and_grads(compiled_gate_mlp, inputs, grad_out)
        torch.set_num_threads(1)
        serial = _value_and_grads(compiled_gate_mlp, inputs, grad_out)
    finally:
        torch.set_num_threads(threads)
    for a, b, c in zip(first, second, serial):
        assert torch.equal(a, b) and torch.equal(a, c)


ALPHA = 0.01


def _plain_causal_importances(*inputs: Tensor) -> tuple[Tensor, Tensor]:
    z = plain_gate_mlp(*inputs)
    return lower_leaky_hard_sigmoid(z, ALPHA), upper_leaky_hard_sigmoid(z, ALPHA)


def _compiled_causal_importances(*inputs: Tensor) -> tuple[Tensor, Tensor]:
    return compiled_causal_importances(*inputs, ALPHA)


def _spread_inputs(B: int, C: int, K: int) -> list[Tensor]:
    """Inputs whose z covers all three sigmoid branches, every subcomponent more than one."""
    h, w1, b1, w2, b2 = _inputs(B, C, K)
    b2 = torch.linspace(-3.0, 4.0, C) if C > 1 else torch.tensor([0.5])
    return [h, w1, b1, w2, b2]


def _pair_values_and_grads(
    fn, inputs: list[Tensor], grad_lower: Tensor | None, grad_upper: Tensor | None
) -> list[Tensor]:
    leaves = [t.clone().requires_grad_() for t in inputs]
    lower, upper = fn(*leaves)
    outputs = [o for o, g in [(lower, grad_lower), (upper, grad_upper)] if g is not None]
    grads = [g for g in [grad_lower, grad_upper] if g is not None]
    torch.autograd.backward(outputs, grads)
    return [lower.detach(), upper.detach()] + [leaf.grad for leaf in leaves]


@pytest.mark.parametrize("B,C,K", [(4096, 200, 16), (1003, 37, 16), (129, 1, 16), (77, 5, 1)])
@pytest.mark.parametrize("given", ["both", "lower", "upper"])
def test_causal_importances_match_plain_and_sigmoids(B: int, C: int, K: int, given: str) -> None:
    inputs = _spread_inputs(B, C, K)
    z = plain_gate_mlp(*inputs)
    if C > 1:
        for branch in [z <= 0, (z > 0) & (z <= 1), z > 1]:
            assert branch.float().mean() > 0.05
    gen = torch.Generator().manual_seed(1)
    grad_lower = torch.randn(B, C, generator=gen) if given in ("both", "lower") else None
    grad_upper = torch.randn(B, C, generator=gen) if given in ("both", "upper") else None
    expected = _pair_values_and_grads(_plain_causal_importances, inputs, grad_lower, grad_upper)
    actual = _pair_values_and_grads(_compiled_causal_importances, inputs, grad_lower, grad_upper)
    names = ["lower", "upper", "h", "w1", "b1", "w2", "b2"]
    for name, a, e in zip(names, actual, expected):
        assert a.shape == e.shape and a.dtype == e.dtype, name
        scale = e.abs().max().item()
        torch.testing.assert_close(
            a, e, rtol=1e-5, atol=1e-5 * scale, msg=lambda m, name=name: f"{name}: {m}"
        )


@pytest.mark.parametrize("B,C", DETERMINISM_SHAPES)
def test_causal_importances_deterministic_and_thread_count_independent(B: int, C: int) -> None:
    inputs = _spread_inputs(B, C, 16)
    gen = torch.Generator().manual_seed(2)
    grad_lower, grad_upper = torch.randn(B, C, generator=gen), torch.randn(B, C, generator=gen)
    fn = _compiled_causal_importances
    threads = torch.get_num_threads()
    try:
        first = _pair_values_and_grads(fn, inputs, grad_lower, grad_upper)
        second = _pair_values_and_grads(fn, inputs, grad_lower, grad_upper)
        torch.set_num_threads(1)
        serial = _pair_values_and_grads(fn, inputs, grad_lower, grad_upper)
    finally:
        torch.set_num_threads(threads)
    for a, b, c in zip(first, second, serial):
        assert torch.equal(a, b) and torch.equal(a, c)


def test_causal_importances_at_the_kinks_match_the_eager_sigmoids() -> None:
    # w1 = b1 = 0 makes z = b2 exactly, so z sits on 0 and 1 where the one-sided gradients differ
    C = 6
    b2 = torch.tensor([-1.0, 0.0, 0.5, 1.0, 2.0, -0.0])
    # positive h: the weight gradients sum same-signed terms, so the kernel's summation order
    # cannot cancel its way past the tolerance
    h = 0.5 + torch.rand(3, C, generator=torch.Generator().manual_seed(0))
    inputs = [h, torch.zeros(C, 1), torch.zeros(C, 1), torch.ones(C, 1), b2]
    grad_lower, grad_upper = torch.ones(3, C), 10 * torch.ones(3, C)
    expected = _pair_values_and_grads(_plain_causal_importances, inputs, grad_lower, grad_upper)
    actual = _pair_values_and_grads(_compiled_causal_importances, inputs, grad_lower, grad_upper)
    for a, e in zip(actual, expected):
        torch.testing.assert_close(a, e, rtol=1e-6, atol=0)


@pytest.mark.parametrize("d_gate", [0, 16])
def test_gates_causal_importances_fused_matches_plain(d_gate: int) -> None:
    torch.manual_seed(0)
    fused = CausalImportanceGates(C=30, d_gate=d_gate)
    plain = CausalImportanceGates(C=30, d_gate=d_gate, fused=False)
    plain.load_state_dict(fused.state_dict())
    h = 2 * torch.randn(200, 30)
    for a, e in zip(fused.causal_importances(h, ALPHA), plain.causal_importances(h, ALPHA)):
        torch.testing.assert_close(a, e, rtol=1e-5, atol=1e-5)
    z = plain(h)
    torch.testing.assert_close(
        plain.causal_importances(h, ALPHA)[1], upper_leaky_hard_sigmoid(z, ALPHA)
    )


def test_a_build_killed_part_way_does_not_block_later_loads() -> None:
    # torch's lock file, as left behind by a build killed while holding it; without the marker
    # of a finished build the load goes through torch's build step, which waits on that lock
    (build_directory() / "lock").touch()
    (build_directory() / "spd_built.json").unlink()
    load = "from spd.kernels import compiled_kernel_available as a; assert a()"
    subprocess.run([sys.executable, "-c", load], check=True, timeout=300)
    assert (build_directory() / "spd_built.json").is_file()


def _checkout_copy(root: Path) -> Path:
    """The kernel's source as another checkout of the project holds it."""
    copy = root / "src" / "spd" / "kernels" / "csrc" / "gate_mlp.cpp"
    copy.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(kernels._SOURCE, copy)
    return copy


def test_build_folder_depends_on_source_content_not_its_path(tmp_path: Path) -> None:
    first, second = _checkout_copy(tmp_path / "a"), _checkout_copy(tmp_path / "b")
    assert build_directory(first) == build_directory(second) == build_directory()
    second.write_text(second.read_text() + "\n// changed\n")
    assert build_directory(second) != build_directory(first)
    assert build_directory(second).name.startswith("spd_gate_mlp_")


def test_loads_from_two_checkouts_share_one_build(tmp_path: Path) -> None:
    # each process loads the kernel from its own copy of the source, as two clones would
    load = (
        "import sys; from pathlib import Path; from spd import kernels as g; "
        "g._SOURCE = Path(sys.argv[1]); assert g.compiled_kernel_available(); "
        "print(g._extension().__file__)"
    )

    def library_after_load(checkout: Path) -> tuple[str, int, int]:
        run = subprocess.run(
            [sys.executable, "-c", load, str(_checkout_copy(checkout))],
            check=True,
            capture_output=True,
            text=True,
            timeout=300,
        )
        library = run.stdout.strip().splitlines()[-1]
        return library, os.stat(library).st_ino, os.stat(library).st_mtime_ns

    first = library_after_load(tmp_path / "a")
    assert library_after_load(tmp_path / "b") == first  # the same file, not rebuilt
    assert library_after_load(tmp_path / "a") == first


def test_masked_inner_has_the_bits_of_the_eager_expression():
    gen = torch.Generator().manual_seed(1)
    h, grad = torch.randn(1000, 21, generator=gen), torch.randn(1000, 21, generator=gen)
    g, u = torch.rand(1000, 21, generator=gen), torch.rand(1000, 21, generator=gen)
    results = []
    for masked_inner in (lambda h, g, u: h * torch.addcmul(u, g, 1 - u), compiled_masked_inner):
        h_, g_ = h.clone().requires_grad_(), g.clone().requires_grad_()
        out = masked_inner(h_, g_, u)
        out.backward(grad)
        results.append((out.detach(), h_.grad, g_.grad))
    assert kernels.masked_inner_available(masks._eager_masked_inner)
    for a, b in zip(*results, strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize("shapes", [[(3,), (619, 2), (1,), (624,)], [(4096, 37)]])
def test_uniform_draws_what_torch_rand_draws(shapes: list[tuple[int, ...]]) -> None:
    # draw sizes around the mt19937 state's refill every 624 numbers
    ours, torchs = torch.Generator().manual_seed(11), torch.Generator().manual_seed(11)
    for shape in shapes:
        assert torch.equal(uniform(shape, ours, torch.float32), torch.rand(shape, generator=torchs))
    assert kernels.compiled_uniform_available()
    assert torch.equal(ours.get_state(), torchs.get_state())


def test_a_failed_build_warns_once_and_leaves_the_pytorch_path() -> None:
    # in a fresh interpreter: the cached extension of this one stays as it is
    fail = (
        "import warnings; from spd import kernels as k\n"
        "def broken(source=None): raise RuntimeError('no compiler')\n"
        "k.load_kernel = broken\n"
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    warnings.simplefilter('always')\n"
        "    assert not k.compiled_kernel_available() and not k.compiled_uniform_available()\n"
        "print(*(w.message for w in caught), sep='\\n')"
    )
    run = subprocess.run(
        [sys.executable, "-c", fail], check=True, capture_output=True, text=True, timeout=300
    )
    assert run.stdout.splitlines() == [
        "C++ kernels (gate MLP, masks, uniform draws) unavailable, using PyTorch's: no compiler"
    ]
