import torch
from conftest import tms_component_model

from spd.decomp.component_model import ComponentModel


def _model(identity: bool = False) -> ComponentModel:
    return tms_component_model(5, 2, identity=identity, C=4, d_gate=3)


def test_linear2_reuses_linear1_components_transposed():
    model = _model()
    U1, V1 = model.factors("linear1")
    U2, V2 = model.factors("linear2")
    assert U2.shape == (5, 4) and V2.shape == (4, 2)
    torch.testing.assert_close(U2, V1.T)
    torch.testing.assert_close(V2, U1.T)
    assert set(model.components.keys()) == {"linear1"}  # no separate linear2 parameters
    assert set(model.gates.keys()) == {"linear1", "linear2"}  # but each layer has its own gates


def test_gradient_through_linear2_reaches_linear1_components():
    model = _model()
    x = torch.rand(8, 5)
    out = model.forward_masked(x, {"linear2": torch.ones(8, 4)})
    out.sum().backward()
    assert model.components["linear1"].U.grad is not None
    assert model.components["linear1"].U.grad.abs().sum() > 0


def test_identity_variant_decomposes_three_layers():
    model = _model(identity=True)
    assert model.module_names == ("linear1", "linear2", "hidden")
    assert set(model.components.keys()) == {"linear1", "hidden"}


def test_full_masks_with_exact_components_reproduce_the_target():
    model = _model()
    W = model.target_weight("linear1")
    with (
        torch.no_grad()
    ):  # make U V == W exactly: U = W, V = I (C = d_in would be needed) -> use SVD
        u, s, vh = torch.linalg.svd(W, full_matrices=False)
        model.components["linear1"].U.zero_()
        model.components["linear1"].V.zero_()
        model.components["linear1"].U[:, :2] = u * s
        model.components["linear1"].V[:2] = vh
    x = torch.rand(16, 5)
    expected, _ = model.forward_recording_inputs(x)
    masks = {name: torch.ones(16, 4) for name in model.module_names}
    torch.testing.assert_close(model.forward_masked(x, masks), expected, atol=1e-5, rtol=1e-5)


def _one_adam_step(model: ComponentModel, lr: float) -> None:
    x = torch.rand(8, 5, generator=torch.Generator().manual_seed(1))
    masks = {name: torch.ones(8, 4) for name in model.module_names}
    model.forward_masked(x, masks).pow(2).sum().backward()
    torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0).step()


def test_per_layer_ties_share_storage_through_updates_and_reloads():
    model = tms_component_model(5, 2, identity=False, C=4, d_gate=3, tied_adam="per_layer")
    assert set(model.components.keys()) == {"linear1", "linear2"}
    linear1, linear2 = model.components["linear1"], model.components["linear2"]
    assert (
        linear2.U.data_ptr() == linear1.V.data_ptr()
        and linear2.V.data_ptr() == linear1.U.data_ptr()
    )
    _one_adam_step(model, lr=0.1)
    torch.testing.assert_close(
        model.factors("linear2")[0], model.factors("linear1")[1].T, rtol=0, atol=0
    )
    state = {k: v.clone() for k, v in model.state_dict().items()}
    reloaded = tms_component_model(5, 2, identity=False, C=4, d_gate=3, tied_adam="per_layer")
    reloaded.load_state_dict(state)
    with torch.no_grad():
        reloaded.components["linear1"].V.add_(1.0)
    torch.testing.assert_close(
        reloaded.factors("linear2")[0], reloaded.factors("linear1")[1].T, rtol=0, atol=0
    )


def test_per_layer_ties_take_one_adam_step_per_layer():
    """Adam's first step moves a parameter by lr * g / (|g| + eps): tied per layer, the shared
    weights move by the sum of the two layers' steps; jointly, by one step on the summed gradient."""
    lr, eps = 0.01, 1e-8
    joint = tms_component_model(5, 2, identity=False, C=4, d_gate=3)
    per_layer = tms_component_model(5, 2, identity=False, C=4, d_gate=3, tied_adam="per_layer")
    V_before = joint.components["linear1"].V.detach().clone()
    torch.testing.assert_close(per_layer.components["linear1"].V, V_before, rtol=0, atol=0)
    _one_adam_step(joint, lr)
    _one_adam_step(per_layer, lr)
    g_joint = joint.components["linear1"].V.grad
    g1, g2 = per_layer.components["linear1"].V.grad, per_layer.components["linear2"].U.grad.T
    torch.testing.assert_close(g1 + g2, g_joint)
    step = lambda g: lr * g / (g.abs() + eps)
    torch.testing.assert_close(joint.components["linear1"].V.detach(), V_before - step(g_joint))
    torch.testing.assert_close(
        per_layer.components["linear1"].V.detach(), V_before - step(g1) - step(g2)
    )
