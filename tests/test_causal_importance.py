import pytest
import torch

from spd.decomp.causal_importance import CausalImportanceGates, fused_gate_mlp, plain_gate_mlp


def _inputs(batch: int, C: int, k: int, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    tensors = [
        torch.randn(batch, C, generator=gen),
        torch.randn(C, k, generator=gen),
        torch.randn(C, k, generator=gen),
        torch.randn(C, k, generator=gen),
        torch.randn(C, generator=gen),
    ]
    return [t.requires_grad_(True) for t in tensors]


@pytest.mark.parametrize("batch, C, k", [(1, 1, 1), (37, 5, 3), (1000, 20, 16), (300, 200, 16)])
def test_fused_gate_equals_plain_in_value_and_every_gradient(batch, C, k):
    plain_in = _inputs(batch, C, k)
    fused_in = [t.detach().clone().requires_grad_(True) for t in plain_in]
    grad_out = torch.randn(batch, C, generator=torch.Generator().manual_seed(9))
    plain_out = plain_gate_mlp(*plain_in)
    fused_out = fused_gate_mlp(*fused_in)
    torch.testing.assert_close(fused_out, plain_out, rtol=1e-5, atol=1e-5)
    plain_out.backward(grad_out)
    fused_out.backward(grad_out)
    for p, f in zip(plain_in, fused_in, strict=True):
        torch.testing.assert_close(f.grad, p.grad, rtol=1e-4, atol=1e-4)


def test_gate_mlp_hand_computed():
    # one subcomponent, d_gate 1: z = w2 * GELU(w1 h + b1) + b2
    h = torch.tensor([[2.0]])
    w1, b1, w2, b2 = (
        torch.tensor([[0.5]]),
        torch.tensor([[0.0]]),
        torch.tensor([[3.0]]),
        torch.tensor([1.0]),
    )
    gelu_one = 1.0 * 0.5 * (1 + torch.erf(torch.tensor(1.0) / 2**0.5))
    assert plain_gate_mlp(h, w1, b1, w2, b2).item() == pytest.approx(3 * gelu_one.item() + 1)


def test_gate_init_scales_and_linear_gate():
    torch.manual_seed(0)
    gates = CausalImportanceGates(C=400, d_gate=50)
    assert gates.w1.std().item() == pytest.approx(2**0.5, rel=0.05)
    assert gates.w2.std().item() == pytest.approx(50**-0.5, rel=0.05)
    assert gates.b1.abs().sum() == 0 and gates.b2.abs().sum() == 0
    linear = CausalImportanceGates(C=3, d_gate=0)
    h = torch.tensor([[1.0, 2.0, 3.0]])
    torch.testing.assert_close(linear(h), h * linear.w + linear.b)


def _importances_and_grads(fn, inputs, alpha: float = 0.01):
    """(lower, upper) of `fn` and the gradients of every input under fixed output weights."""
    inputs = [t.detach().clone().requires_grad_(True) for t in inputs]
    lower, upper = fn(*inputs, alpha)
    gen = torch.Generator().manual_seed(3)
    weights = [torch.randn(lower.shape, generator=gen) for _ in range(2)]
    ((lower * weights[0]).sum() + (upper * weights[1]).sum()).backward()
    return lower, upper, [t.grad for t in inputs]


def _plain_importances(h, w1, b1, w2, b2, alpha):
    from spd.decomp.sigmoids import lower_leaky_hard_sigmoid, upper_leaky_hard_sigmoid

    z = plain_gate_mlp(h, w1, b1, w2, b2)
    return lower_leaky_hard_sigmoid(z, alpha), upper_leaky_hard_sigmoid(z, alpha)


def _saved_for_backward(fn, inputs) -> list[int]:
    """Sizes of the tensors autograd keeps for the backward pass of `fn`."""
    sizes: list[int] = []

    def pack(tensor):
        sizes.append(tensor.numel())
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        fn(*inputs, 0.01)
    return sizes


def test_compiled_gates_equal_plain_and_keep_no_hidden_layer_for_backward():
    """The CUDA path's torch.compile'd gates, run on the CPU: the plain gates' values and
    gradients, and nothing of the batch x C x d_gate hidden layer kept for the backward pass."""
    from spd.decomp.causal_importance import _Compilation, compiled_gate_importances

    batch, C, k = 64, 12, 16
    inputs = [t * 0.5 for t in _inputs(batch, C, k, seed=4)]
    lower, upper, grads = _importances_and_grads(compiled_gate_importances, inputs)
    assert not _Compilation.failed
    expected_lower, expected_upper, expected_grads = _importances_and_grads(
        _plain_importances, inputs
    )
    torch.testing.assert_close(lower, expected_lower, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(upper, expected_upper, rtol=1e-5, atol=1e-5)
    for grad, expected in zip(grads, expected_grads, strict=True):
        torch.testing.assert_close(grad, expected, rtol=1e-4, atol=1e-4)
    assert max(_saved_for_backward(_plain_importances, inputs)) == batch * C * k
    assert max(_saved_for_backward(compiled_gate_importances, inputs)) < batch * C * k


def test_compiled_gates_fall_back_to_eager_with_a_warning(monkeypatch):
    from spd.decomp import causal_importance

    def fails():
        raise RuntimeError("no compiler")

    monkeypatch.setattr(causal_importance, "_compiled_gate_importances", fails)
    monkeypatch.setattr(causal_importance._Compilation, "failed", False)
    inputs = _inputs(8, 3, 2)
    with pytest.warns(UserWarning, match="torch.compile of the CI gates failed"):
        lower, upper = causal_importance.compiled_gate_importances(*inputs, 0.01)
    assert causal_importance._Compilation.failed
    expected = _plain_importances(*inputs, 0.01)
    torch.testing.assert_close((lower, upper), expected, rtol=1e-6, atol=1e-6)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_gates_equal_the_cpu_plain_gates():
    from spd.decomp.causal_importance import causal_importances

    inputs = _inputs(512, 40, 16, seed=5)
    lower, upper, grads = _importances_and_grads(
        lambda *tensors: causal_importances(*tensors, fused=True),
        [t.cuda() for t in inputs],
    )
    expected_lower, expected_upper, expected_grads = _importances_and_grads(
        _plain_importances, inputs
    )
    torch.testing.assert_close(lower.cpu(), expected_lower, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(upper.cpu(), expected_upper, rtol=1e-4, atol=1e-4)
    for grad, expected in zip(grads, expected_grads, strict=True):
        torch.testing.assert_close(grad.cpu(), expected, rtol=1e-3, atol=1e-3)
