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
