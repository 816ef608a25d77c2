import torch

from spd.decomp.masks import stochastic_mask


def test_mask_is_ci_plus_one_minus_ci_times_uniform_with_gradient_one_minus_u():
    ci = torch.tensor([[0.0, 0.25, 1.0]], requires_grad=True)
    mask = stochastic_mask(ci, torch.Generator().manual_seed(3))
    uniform = torch.rand((1, 3), generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(mask, ci.detach() + (1 - ci.detach()) * uniform)
    assert mask[0, 0].item() == uniform[0, 0].item()  # CI 0: pure noise
    assert mask[0, 2].item() == 1.0  # CI 1: always on
    mask.sum().backward()
    torch.testing.assert_close(ci.grad, 1 - uniform)


def test_mask_lies_between_ci_and_one():
    ci = torch.rand(1000, 7, generator=torch.Generator().manual_seed(0))
    mask = stochastic_mask(ci, torch.Generator().manual_seed(1))
    assert bool((mask >= ci).all()) and bool((mask <= 1).all())
