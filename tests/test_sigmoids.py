import pytest
import torch

from spd.decomp.sigmoids import lower_leaky_hard_sigmoid, upper_leaky_hard_sigmoid

ALPHA = 0.01

# (z, lower value, lower gradient, upper value, upper gradient), one row per branch
CASES = [
    (-2.0, -0.02, ALPHA, 0.0, 0.0),
    (0.5, 0.5, 1.0, 0.5, 1.0),
    (3.0, 1.0, 0.0, 1.02, ALPHA),
]


@pytest.mark.parametrize("z, lower, lower_grad, upper, upper_grad", CASES)
@pytest.mark.parametrize("which", ["lower", "upper"])
def test_value_and_gradient_on_each_branch(which, z, lower, lower_grad, upper, upper_grad):
    squash = lower_leaky_hard_sigmoid if which == "lower" else upper_leaky_hard_sigmoid
    value, grad = (lower, lower_grad) if which == "lower" else (upper, upper_grad)
    zt = torch.tensor(z, requires_grad=True)
    out = squash(zt, ALPHA)
    out.backward()
    assert out.item() == pytest.approx(value)
    assert zt.grad.item() == pytest.approx(grad)


def test_sigmoids_agree_on_unit_interval_and_are_continuous():
    z = torch.tensor([0.0, 1e-6, 0.3, 1.0, 1.0 + 1e-6])
    lower = lower_leaky_hard_sigmoid(z, ALPHA)
    upper = upper_leaky_hard_sigmoid(z, ALPHA)
    torch.testing.assert_close(lower, upper, atol=1e-6, rtol=0)
