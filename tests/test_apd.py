import copy

import pandas as pd
import pytest
import torch
import yaml
from conftest import TINY_APD, TINY_TMS

from spd.cli import main
from spd.config import TMSTargetConfig
from spd.decomp.apd import APDModel, batch_topk_mask, schatten_terms, simplicity_loss
from spd.families.tms import model as tms
from spd.pipeline.layout import RunFolder
from spd.targets.base import dense


def _apd_on_tms(identity: bool = False) -> APDModel:
    config = TMSTargetConfig(n_features=5, d_hidden=2, identity_layer=identity)
    torch.manual_seed(0)
    model = tms.build_model(config)
    model.tie_weights()
    with torch.no_grad():
        model.linear2.bias.fill_(0.3)  # keep ReLU inputs away from its kink
    for param in model.parameters():
        param.requires_grad_(False)
    return APDModel(
        tms.as_target(model, config), C=4, m=2, generator=torch.Generator().manual_seed(1)
    )


def _finite_difference_attributions(
    model: APDModel, x: torch.Tensor, eps: float = 1e-3
) -> torch.Tensor:
    """A_c = sum_o (d/dt f_o with every layer's output moved by t * (its input) P_{c,l})^2, by
    central differences, one component at a time."""
    inputs = {}
    handles = [
        model.target.model.get_submodule(name).register_forward_hook(
            lambda _m, args, _out, name=name: inputs.__setitem__(name, dense(args[0]).detach())
        )
        for name in model.module_names
    ]
    model.target.model(x)
    for handle in handles:
        handle.remove()
    scores = torch.zeros(x.shape[0], model.C)
    for c in range(model.C):
        shifts = {
            name: inputs[name] @ model.component_weights(name)[c].T for name in model.module_names
        }

        def shifted(t: float, shifts: dict[str, torch.Tensor] = shifts) -> torch.Tensor:
            hooks = [
                model.target.model.get_submodule(name).register_forward_hook(
                    lambda _m, _args, out, name=name: out + t * shifts[name]
                )
                for name in model.module_names
            ]
            try:
                return model.target.model(x)
            finally:
                for hook in hooks:
                    hook.remove()

        derivative = (shifted(eps) - shifted(-eps)) / (2 * eps)  # (B, outputs)
        scores[:, c] = derivative.pow(2).sum(dim=1)
    return scores


@pytest.mark.parametrize("identity", [False, True])
def test_attributions_match_finite_differences(identity):
    model = _apd_on_tms(identity)
    x = torch.rand(6, 5)
    with torch.no_grad():
        expected = _finite_difference_attributions(model, x)
    attributions, output = model.attributions(x)
    torch.testing.assert_close(attributions, expected, rtol=2e-2, atol=1e-4)
    torch.testing.assert_close(output, model.target.model(x))


def test_batch_topk_keeps_the_largest_entries_over_the_whole_batch():
    attributions = torch.tensor(
        [[0.9, 0.1, 0.5], [0.2, 0.8, 0.0], [0.3, 0.4, 0.7], [0.6, 0.0, 0.05]]
    )
    mask = batch_topk_mask(attributions, topk=1.25)  # int(1.25 * 4) = 5 entries of 12
    assert mask.sum() == 5
    expected = torch.tensor([[1.0, 0, 0], [0, 1, 0], [0, 0, 1], [1, 0, 0]])
    expected[0, 2] = 1.0  # 0.9, 0.8, 0.7, 0.6, 0.5
    assert torch.equal(mask, expected)
    assert batch_topk_mask(attributions, topk=0.2).sum() == 0  # int(0.8) = 0


def test_schatten_surrogate_by_hand():
    A = torch.tensor([[[3.0, 0.0], [4.0, 1.0]]])  # C=1, d_in=2, m=2: column norms^2 25, 1
    B = torch.tensor([[[1.0, 0.0, 0.0], [2.0, 2.0, 1.0]]])  # m=2, d_out=3: row norms^2 1, 9
    # p = 1: sqrt(25 * 1) + sqrt(1 * 9) = 8; p = 2: 25 + 9 = 34
    assert schatten_terms(A, B, 1.0).item() == pytest.approx(8.0)
    assert schatten_terms(A, B, 2.0).item() == pytest.approx(34.0)


def test_simplicity_loss_counts_only_active_components():
    model = _apd_on_tms()
    per_component = sum(schatten_terms(*model.factors(n), 1.0) for n in model.module_names)
    mask = torch.tensor([[1.0, 0, 0, 0], [1.0, 0, 1.0, 0]])
    expected = (2 * per_component[0] + per_component[2]) / (20 * 2)  # N = 10 + 10 (tied, twice)
    assert simplicity_loss(model, mask, 1.0, 20).item() == pytest.approx(expected.item())


def test_tiny_apd_decomposition_end_to_end(tmp_path):
    config = copy.deepcopy(TINY_TMS)
    config["decomposition"] = {**TINY_APD, "steps": 40}
    path = tmp_path / "apd.yaml"
    path.write_text(yaml.safe_dump(config))
    out = tmp_path / "run"
    assert main(["run", "--config", str(path), "--out", str(out)]) == 0
    metrics = pd.read_parquet(RunFolder(out).metrics)
    assert set(metrics["metric"]) == {"mmcs", "mmcs_std", "ml2r", "ml2r_std"}
    assert set(metrics["method"]) == {"apd"}
    losses = pd.read_parquet(RunFolder(out).losses)
    assert {"faithfulness", "minimality", "simplicity", "total"} <= set(losses.columns)
    assert list(losses["step"]) == [0, 10, 20, 30, 39]


def _apd_on_resid(unit_norm_A: bool) -> APDModel:
    from spd.config import ResidMLPTargetConfig
    from spd.families.resid_mlp import model as resid_mlp

    config = ResidMLPTargetConfig(family="resid_mlp", n_features=6, d_embed=12, d_mlp=4, n_layers=2)
    torch.manual_seed(0)
    model = resid_mlp.build_model(config)
    for param in model.parameters():
        param.requires_grad_(False)
    target = resid_mlp.as_target(model, config)
    return APDModel(
        target, C=5, m=3, generator=torch.Generator().manual_seed(1), unit_norm_A=unit_norm_A
    )


def test_unit_norm_A_normalises_every_column_and_its_gradient_has_no_radial_part():
    model = _apd_on_resid(unit_norm_A=True)
    A, _ = model.factors("layers.0.mlp_in")
    torch.testing.assert_close(A.norm(dim=1), torch.ones(5, 3))
    raw = model.components["layers-0-mlp_in"].A
    (A * torch.randn_like(A)).sum().backward()
    radial = (raw.grad * raw).sum(dim=1)  # the gradient along each raw column
    torch.testing.assert_close(radial, torch.zeros(5, 3), atol=1e-6, rtol=0)
    assert not torch.allclose(
        _apd_on_resid(unit_norm_A=False).factors("layers.0.mlp_in")[0].norm(dim=1), torch.ones(5, 3)
    )


@pytest.mark.parametrize(
    ("make_model", "n_features"),
    [(lambda: _apd_on_tms(identity=True), 5), (lambda: _apd_on_resid(unit_norm_A=True), 6)],
    ids=["tms_tied", "resid_unit_norm_A"],
)
def test_apd_losses_share_one_parametrisation_with_the_same_values_and_gradients(
    make_model, n_features
):
    # apd_losses computes each layer's (A, B) once per step; the attribution pass reads them under
    # no_grad, and a cache filled there once left every A without a gradient.
    from spd.config import APDConfig
    from spd.decomp.apd import _apd_losses, apd_losses

    config = APDConfig(
        method="apd",
        C=4,
        topk=1.0,
        simplicity_coeff=0.1,
        activation_recon_coeff=1.0,
        schatten_p=0.9,
        lr=1e-3,
    )
    model = make_model()
    x = torch.rand(8, n_features, generator=torch.Generator().manual_seed(4))
    results = []
    for losses_of in (_apd_losses, apd_losses):  # every factor recomputed per use, then shared
        model.zero_grad()
        losses = losses_of(model, x, config)
        losses["total"].backward()
        results.append(
            (
                {k: v.detach() for k, v in losses.items()},
                [p.grad.clone() for p in model.parameters()],
            )
        )
    (plain_losses, plain_grads), (shared_losses, shared_grads) = results
    torch.testing.assert_close(shared_losses, plain_losses)
    assert all(grad.abs().sum() > 0 for grad in shared_grads)
    for shared, plain in zip(shared_grads, plain_grads, strict=True):
        torch.testing.assert_close(shared, plain)


def test_attributions_on_the_residual_mlp_match_finite_differences():
    model = _apd_on_resid(unit_norm_A=True)
    x = torch.rand(3, 6, generator=torch.Generator().manual_seed(2)) - 0.5
    scores, _ = model.attributions(x)
    torch.testing.assert_close(
        scores, _finite_difference_attributions(model, x), rtol=2e-3, atol=1e-6
    )


def test_activation_reconstruction_compares_relu_of_every_mlp_in_output():
    from spd.decomp.apd import activation_reconstruction_loss

    model = _apd_on_resid(unit_norm_A=False)
    x = torch.rand(4, 6, generator=torch.Generator().manual_seed(3))
    model.attributions(x)
    model.forward_masked(x, torch.ones(4, 5))
    assert (
        set(model.clean_activations)
        == set(model.masked_activations)
        == {"layers.0.mlp_in", "layers.1.mlp_in"}
    )
    # Layer 0 by hand: both passes read r0 = W_E x; the target applies W_in, the top-k pass sum_c A_c B_c.
    target = model.target.model
    r0 = x @ target.W_E.T
    clean = torch.relu(r0 @ target.layers[0].mlp_in.weight.T)
    A, B = model.factors("layers.0.mlp_in")
    masked = torch.relu(r0 @ (A @ B).sum(dim=0))
    torch.testing.assert_close(model.clean_activations["layers.0.mlp_in"], clean)
    torch.testing.assert_close(model.masked_activations["layers.0.mlp_in"], masked)
    layer1 = (
        model.masked_activations["layers.1.mlp_in"] - model.clean_activations["layers.1.mlp_in"]
    )
    expected = (((masked - clean) ** 2).mean() + (layer1**2).mean()) / 2
    assert activation_reconstruction_loss(model).item() == pytest.approx(expected.item())


def test_tiny_apd_on_the_residual_mlp_end_to_end(tmp_path):
    from conftest import TINY_RESID_MLP

    config = copy.deepcopy(TINY_RESID_MLP)
    config["decomposition"] = {
        "method": "apd",
        "C": 10,
        "m": 4,
        "topk": 1.28,
        "simplicity_coeff": 10.0,
        "schatten_p": 0.9,
        "activation_recon_coeff": 1.0,
        "unit_norm_A": True,
        "lr": 1e-3,
        "lr_schedule": "cosine",
        "warmup_pct": 0.01,
        "steps": 30,
        "batch_size": 32,
        "log_every": 10,
    }
    path = tmp_path / "apd.yaml"
    path.write_text(yaml.safe_dump(config))
    out = tmp_path / "run"
    assert main(["run", "--config", str(path), "--out", str(out)]) == 0
    losses = pd.read_parquet(RunFolder(out).losses)
    assert "activation_recon" in losses.columns and losses["activation_recon"].notna().all()
    metrics = pd.read_parquet(RunFolder(out).metrics)
    values = {(r.layer, r.metric): r.value for r in metrics.itertuples()}
    assert 1 <= values[("all layers", "distinct_feature_components")] <= 8
    for layer in (0, 1):
        assert -1 <= values[(f"layers.{layer}.mlp_in", "neuron_contribution_corr")] <= 1


def test_components_start_at_the_published_xavier_normal_scale():
    from spd.decomp.apd import APDLayerComponents

    layer = APDLayerComponents(
        40,
        10,
        C=50,
        m=11,
        generator=torch.Generator().manual_seed(0),
        device="cpu",
        init_instances=3,
    )
    expected_A, expected_B = (2 / (53 * 40 * 11)) ** 0.5, (2 / (53 * 11 * 10)) ** 0.5
    assert abs(layer.A.std().item() / expected_A - 1) < 0.02
    assert abs(layer.B.std().item() / expected_B - 1) < 0.02
