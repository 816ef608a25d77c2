"""The C++ gate-MLP kernel against the eager reference: values, all five gradients, determinism."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from spd.decomp.causal_importance import plain_gate_mlp
from spd.decomp.gate_kernel import compiled_gate_mlp, compiled_kernel_available

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


def test_deterministic_and_thread_count_independent() -> None:
    inputs = _inputs(1000, 45, 16)
    grad_out = torch.randn(1000, 45)
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
