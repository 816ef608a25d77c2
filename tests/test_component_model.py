import torch
from conftest import tms_component_model

from spd.decomp.component_model import ComponentModel


def _model() -> ComponentModel:
    return tms_component_model(6, 3, identity=True, C=5, d_gate=3)


def test_reused_clean_pass_activations_give_the_same_outputs_and_gradients():
    """Masked passes on the clean batch reuse V x from the clean pass; a copy of the batch does not."""
    model = _model()
    x = torch.rand(32, 6, generator=torch.Generator().manual_seed(1))
    model.forward_recording_inputs(x)
    masks = {name: torch.rand(32, 5) for name in model.module_names}
    for chosen in ([name] for name in model.module_names):
        subset = {name: masks[name] for name in chosen}
        reused = model.forward_masked(x, subset)
        grads_reused = torch.autograd.grad(
            reused.sum(), list(model.components.parameters()), allow_unused=True
        )
        fresh = model.forward_masked(x.clone(), subset)
        grads_fresh = torch.autograd.grad(
            fresh.sum(), list(model.components.parameters()), allow_unused=True
        )
        torch.testing.assert_close(reused, fresh, rtol=0, atol=0)
        for a, b in zip(grads_reused, grads_fresh, strict=True):
            assert (a is None) == (b is None)
            if a is not None:
                torch.testing.assert_close(a, b)
    torch.testing.assert_close(
        model.forward_masked(x, masks), model.forward_masked(x.clone(), masks)
    )


def test_cached_inner_acts_follow_parameter_updates():
    model = _model()
    x = torch.rand(4, 6)
    _, inputs = model.forward_recording_inputs(x)
    before = model.inner_acts("linear1", inputs["linear1"]).detach().clone()
    with torch.no_grad():
        model.components["linear1"].V.mul_(2.0)
    torch.testing.assert_close(model.inner_acts("linear1", inputs["linear1"]), 2 * before)
