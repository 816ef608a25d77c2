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
    with torch.no_grad():  # make U V == W exactly: U = W, V = I (C = d_in would be needed) -> use SVD
        u, s, vh = torch.linalg.svd(W, full_matrices=False)
        model.components["linear1"].U.zero_()
        model.components["linear1"].V.zero_()
        model.components["linear1"].U[:, :2] = u * s
        model.components["linear1"].V[:2] = vh
    x = torch.rand(16, 5)
    expected, _ = model.forward_recording_inputs(x)
    masks = {name: torch.ones(16, 4) for name in model.module_names}
    torch.testing.assert_close(model.forward_masked(x, masks), expected, atol=1e-5, rtol=1e-5)
