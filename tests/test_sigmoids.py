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
def test_lower_leaky_value_and_gradient(z, lower, lower_grad, upper, upper_grad):
    zt = torch.tensor(z, requires_grad=True)
    out = lower_leaky_hard_sigmoid(zt, ALPHA)
    out.backward()
    assert out.item() == pytest.approx(lower)
    assert zt.grad.item() == pytest.approx(lower_grad)


@pytest.mark.parametrize("z, lower, lower_grad, upper, upper_grad", CASES)
def test_upper_leaky_value_and_gradient(z, lower, lower_grad, upper, upper_grad):
    zt = torch.tensor(z, requires_grad=True)
    out = upper_leaky_hard_sigmoid(zt, ALPHA)
    out.backward()
    assert out.item() == pytest.approx(upper)
    assert zt.grad.item() == pytest.approx(upper_grad)


def test_sigmoids_agree_on_unit_interval_and_are_continuous():
    z = torch.tensor([0.0, 1e-6, 0.3, 1.0, 1.0 + 1e-6])
    lower = lower_leaky_hard_sigmoid(z, ALPHA)
    upper = upper_leaky_hard_sigmoid(z, ALPHA)
    torch.testing.assert_close(lower, upper, atol=1e-6, rtol=0)
