import torch

from spd.decomp.masks import apply_mask, stochastic_mask


def test_mask_is_ci_plus_one_minus_ci_times_uniform_with_gradient_one_minus_u():
    ci = torch.tensor([[0.0, 0.25, 1.0]], requires_grad=True)
    mask = stochastic_mask(ci, torch.Generator().manual_seed(3)).dense()
    uniform = torch.rand((1, 3), generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(mask, ci.detach() + (1 - ci.detach()) * uniform)
    assert mask[0, 0].item() == uniform[0, 0].item()  # CI 0: pure noise
    assert mask[0, 2].item() == 1.0  # CI 1: always on
    mask.sum().backward()
    torch.testing.assert_close(ci.grad, 1 - uniform)


def test_mask_lies_between_ci_and_one():
    ci = torch.rand(1000, 7, generator=torch.Generator().manual_seed(0))
    mask = stochastic_mask(ci, torch.Generator().manual_seed(1)).dense()
    assert bool((mask >= ci).all()) and bool((mask <= 1).all())


def _masked_inner_and_grads(mask_of, h: torch.Tensor, ci: torch.Tensor, grad: torch.Tensor):
    h, ci = h.clone().requires_grad_(), ci.clone().requires_grad_()
    out = apply_mask(h, mask_of(ci))
    out.backward(grad)
    return out.detach(), h.grad, ci.grad


def test_a_kept_mask_applies_with_the_bits_of_the_dense_one():
    # on CPU float32 the kept (g, u) form runs the C++ kernel where it rounds as torch does
    gen = torch.Generator().manual_seed(0)
    h, grad = torch.randn(513, 37, generator=gen), torch.randn(513, 37, generator=gen)
    ci = torch.rand(513, 37, generator=gen)
    kept = _masked_inner_and_grads(
        lambda g: stochastic_mask(g, torch.Generator().manual_seed(5)), h, ci, grad
    )
    dense = _masked_inner_and_grads(
        lambda g: stochastic_mask(g, torch.Generator().manual_seed(5)).dense(), h, ci, grad
    )
    for a, b in zip(kept, dense, strict=True):
        assert torch.equal(a, b)
