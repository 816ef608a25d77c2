import math

import pandas as pd
import pytest
import torch
import torch.nn.functional as F
import yaml
from conftest import TINY_RESID_MLP

from spd.cli import main
from spd.config import ResidMLPTargetConfig, SPDConfig
from spd.decomp.component_model import ComponentModel
from spd.decomp.train import spd_losses
from spd.families.resid_mlp import model as resid_mlp
from spd.families.resid_mlp.metrics import pearson
from spd.pipeline.layout import RunFolder
from spd.targets.base import Target

CONFIG = ResidMLPTargetConfig(family="resid_mlp", n_features=6, d_embed=10, d_mlp=3, n_layers=2)


def test_forward_shapes_and_decomposed_layers():
    torch.manual_seed(0)
    model = resid_mlp.build_model(CONFIG)
    assert model(torch.zeros(7, 6)).shape == (7, 6)
    target = resid_mlp.as_target(model, CONFIG)
    assert target.decomposed_modules == (
        "layers.0.mlp_in",
        "layers.0.mlp_out",
        "layers.1.mlp_in",
        "layers.1.mlp_out",
    )
    assert model.get_submodule("layers.1.mlp_in").weight.shape == (3, 10)
    assert model.get_submodule("layers.1.mlp_out").weight.shape == (10, 3)


class DenseResidMLP(torch.nn.Module):
    """The spec's formula with a dense residual stream and plain nn.Linear layers."""

    def __init__(self, model: resid_mlp.ResidMLPModel) -> None:
        super().__init__()
        self.register_buffer("W_E", model.W_E.clone())
        self.layers = torch.nn.ModuleList()
        for block in model.layers:
            dense_block = torch.nn.Module()
            dense_block.mlp_in = torch.nn.Linear(*block.mlp_in.weight.shape[::-1], bias=False)
            dense_block.mlp_out = torch.nn.Linear(*block.mlp_out.weight.shape[::-1], bias=False)
            self.layers.append(dense_block)
        self.load_state_dict(model.state_dict())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x @ self.W_E.T
        for block in self.layers:
            residual = residual + block.mlp_out(F.relu(block.mlp_in(residual)))
        return residual @ self.W_E


def test_factored_residual_forward_matches_the_dense_formula_in_value_and_gradient():
    torch.manual_seed(0)
    model = resid_mlp.build_model(CONFIG)
    reference = DenseResidMLP(model)
    x = resid_mlp.batch_sampler(CONFIG.model_copy(update={"feature_probability": 0.3}))(
        64, torch.Generator().manual_seed(0)
    )
    output, expected = model(x), reference(x)
    torch.testing.assert_close(output, expected)
    output.pow(2).sum().backward()
    expected.pow(2).sum().backward()
    for (name, param), dense_param in zip(
        model.named_parameters(), reference.parameters(), strict=True
    ):
        torch.testing.assert_close(param.grad, dense_param.grad, msg=name)


def test_spd_losses_and_gradients_on_the_factored_stream_match_a_dense_target():
    """Masked component outputs stay factored (every pass: clean, all-masked, layerwise)."""
    torch.manual_seed(0)
    model = resid_mlp.build_model(CONFIG)
    sample = resid_mlp.batch_sampler(CONFIG.model_copy(update={"feature_probability": 0.3}))
    spd = SPDConfig(C=5, d_gate=4, importance_minimality_coeff=1e-2, pnorm=2, batch_size=32)
    results = []
    for network in (model, DenseResidMLP(model)):
        for param in network.parameters():
            param.requires_grad_(False)
        target = Target(network, resid_mlp.decomposed_modules(CONFIG.n_layers), sample)
        torch.manual_seed(3)  # the gates' initialisation
        components = ComponentModel(
            target, spd.C, spd.d_gate, False, torch.Generator().manual_seed(1)
        )
        generator = torch.Generator().manual_seed(2)
        losses = spd_losses(components, sample(spd.batch_size, generator), spd, generator)
        losses["total"].backward()
        results.append((losses, [p.grad for p in components.parameters()]))
        hidden, mask = torch.ones(2, CONFIG.d_mlp), torch.ones(2, spd.C)
        written = components.masked_linear("layers.0.mlp_out", hidden, mask)
        assert isinstance(written, resid_mlp.FactoredResidual) == (network is model)
    (losses, grads), (dense_losses, dense_grads) = results
    for key, value in dense_losses.items():
        torch.testing.assert_close(losses[key], value, msg=key)
    for grad, dense_grad in zip(grads, dense_grads, strict=True):
        torch.testing.assert_close(grad, dense_grad)


def test_embedding_has_unit_norm_columns_and_is_not_trained():
    torch.manual_seed(0)
    model = resid_mlp.build_model(CONFIG)
    torch.testing.assert_close(model.W_E.norm(dim=0), torch.ones(6))
    assert "W_E" not in dict(model.named_parameters())
    assert "W_E" in model.state_dict()


def test_labels_are_x_plus_relu_x():
    x = torch.tensor([[-1.0, -0.25, 0.0, 0.5, 1.0]])
    torch.testing.assert_close(resid_mlp.labels(x), torch.tensor([[-1.0, -0.25, 0.0, 1.0, 2.0]]))


def test_data_is_sparse_and_in_minus_one_to_one():
    sample = resid_mlp.batch_sampler(CONFIG.model_copy(update={"feature_probability": 0.5}))
    x = sample(4000, torch.Generator().manual_seed(0))
    assert x.min() >= -1 and x.max() <= 1 and (x < 0).any()
    assert (x != 0).float().mean().item() == pytest.approx(0.5, abs=0.02)


def test_neuron_contributions_by_hand():
    model = resid_mlp.ResidMLPModel(n_features=2, d_embed=2, d_mlp=2, n_layers=1)
    with torch.no_grad():
        model.W_E.copy_(torch.eye(2))
        model.layers[0].mlp_in.weight.copy_(torch.tensor([[1.0, 2.0], [3.0, 4.0]]))
        model.layers[0].mlp_out.weight.copy_(torch.tensor([[5.0, 6.0], [7.0, 8.0]]))
    # feature i, neuron n: W_in[n, i] * W_out[i, n]
    expected = torch.tensor([[1.0 * 5.0, 3.0 * 6.0], [2.0 * 7.0, 4.0 * 8.0]])
    torch.testing.assert_close(resid_mlp.neuron_contributions(model, 0), expected)
    only_first_row = torch.tensor([[[1.0, 0.0], [0.0, 0.0]], [[0.0, 0.0], [0.0, 0.0]]])
    torch.testing.assert_close(
        resid_mlp.neuron_contributions(model, 0, W_in=only_first_row),
        torch.tensor([[5.0, 0.0], [0.0, 0.0]]),
    )


def test_pearson():
    assert pearson(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([2.0, 4.0, 6.0])) == pytest.approx(
        1.0
    )
    assert pearson(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([3.0, 2.0, 1.0])) == pytest.approx(
        -1.0
    )


def test_tiny_resid_mlp_run_end_to_end(tmp_path):
    path = tmp_path / "resid.yaml"
    path.write_text(yaml.safe_dump(TINY_RESID_MLP))
    assert main(["run", "--config", str(path), "--out", str(tmp_path / "run")]) == 0
    metrics = pd.read_parquet(RunFolder(tmp_path / "run").metrics)
    by_key = {(r.layer, r.metric): r.value for r in metrics.itertuples()}
    for layer in (0, 1):
        assert (f"layers.{layer}.mlp_in", "ci_pattern_errors") in by_key
        assert -1 <= by_key[(f"layers.{layer}.mlp_in", "neuron_contribution_corr")] <= 1
        active = by_key[(f"layers.{layer}.mlp_out", "active_on_every_probe")]
        assert 0 <= active <= by_key[(f"layers.{layer}.mlp_out", "alive_subcomponents")]
    assert all(math.isfinite(v) for v in metrics["value"])
    assert set(metrics["family"]) == {"resid_mlp"}
    target = torch.load(RunFolder(tmp_path / "run").target, weights_only=True)
    assert target["config"]["family"] == "resid_mlp"
    contributions = pd.read_parquet(tmp_path / "run" / "neuron_contributions.parquet")
    assert len(contributions) == 2 * 8 * 4  # layers x features x neurons
    assert main(["figures", str(tmp_path / "run"), "--out", str(tmp_path / "resid.pdf")]) == 0
    assert (tmp_path / "resid.pdf").read_bytes().startswith(b"%PDF")


def test_w_out_counts_live_subcomponents_active_on_every_probe_and_the_active_share():
    from spd.config import EvalConfig
    from spd.decomp.component_model import ComponentModel
    from spd.evaluate.causal_importance_metrics import EvaluationCI
    from spd.families.resid_mlp.metrics import metric_rows

    one_layer = ResidMLPTargetConfig(
        family="resid_mlp", n_features=3, d_embed=10, d_mlp=3, n_layers=1
    )
    target = resid_mlp.as_target(resid_mlp.build_model(one_layer), one_layer).restricted_to(
        ["layers.0.mlp_out"]
    )
    model = ComponentModel(target, 4, 2, False, torch.Generator().manual_seed(0))
    # Subcomponent 0 active on all 3 probes, 1 on two of them, 2 dead, 3 alive only on random inputs.
    probes = torch.tensor([[1.0, 0.95, 0.0, 0.0], [0.9, 0.2, 0.0, 0.0], [0.99, 0.91, 0.0, 0.05]])
    random = torch.tensor([[0.0, 0.0, 0.0, 0.5]])
    ci = EvaluationCI(probes={"layers.0.mlp_out": probes}, random={"layers.0.mlp_out": random})
    rows = {
        (layer, metric): value for layer, metric, value, _ in metric_rows(model, ci, EvalConfig())
    }
    assert rows[("layers.0.mlp_out", "active_on_every_probe")] == 1
    # live: 0, 1, 3; active pairs: 3 + 2 + 0 of 3 x 3
    assert rows[("layers.0.mlp_out", "active_probe_fraction")] == pytest.approx(5 / 9)


def test_w_out_dense_pattern_errors_and_neuron_alignment_by_hand():
    from spd.config import EvalConfig
    from spd.decomp.component_model import ComponentModel
    from spd.evaluate.causal_importance_metrics import EvaluationCI
    from spd.families.resid_mlp.metrics import metric_rows

    one_layer = ResidMLPTargetConfig(
        family="resid_mlp", n_features=3, d_embed=10, d_mlp=2, n_layers=1
    )
    target = resid_mlp.as_target(resid_mlp.build_model(one_layer), one_layer).restricted_to(
        ["layers.0.mlp_out"]
    )
    model = ComponentModel(target, 4, 2, False, torch.Generator().manual_seed(0))
    with torch.no_grad():  # read directions: neuron 0; neuron 1 scaled; 45 degrees; dead
        model.components["layers-0-mlp_out"].V.copy_(
            torch.tensor([[1.0, 0.0], [0.0, -3.0], [1.0, 1.0], [1.0, 1.0]])
        )
    # The d_mlp = 2 densest columns are 0 and 2; column 2 never reaches 0.9 (1 error); column 1
    # lies outside the block with two entries above 0.1 (2 errors); column 3 stays at 0.1 (none).
    probes = torch.tensor([[1.0, 0.5, 0.8, 0.1], [0.95, 0.3, 0.85, 0.0], [0.9, 0.05, 0.8, 0.1]])
    random = torch.tensor([[0.0, 0.0, 0.0, 0.0]])
    ci = EvaluationCI(probes={"layers.0.mlp_out": probes}, random={"layers.0.mlp_out": random})
    rows = {
        (layer, metric): value for layer, metric, value, _ in metric_rows(model, ci, EvalConfig())
    }
    assert rows[("layers.0.mlp_out", "dense_pattern_errors")] == 3
    # live: 0, 1, 2 (3 never exceeds 0.1): cosines 1, 1 and 1/sqrt(2)
    assert rows[("layers.0.mlp_out", "neuron_alignment")] == pytest.approx((2 + 2**-0.5) / 3)


def test_spd_neuron_contributions_pick_the_largest_contribution_and_use_spds_own_w_out():
    from spd.config import EvalConfig
    from spd.evaluate.causal_importance_metrics import EvaluationCI
    from spd.families.resid_mlp.metrics import metric_rows, neuron_contribution_table

    config = ResidMLPTargetConfig(family="resid_mlp", n_features=2, d_embed=2, d_mlp=2, n_layers=1)
    target_model = resid_mlp.build_model(config)
    with torch.no_grad():
        target_model.W_E.copy_(torch.eye(2))
        target_model.layers[0].mlp_in.weight.copy_(torch.tensor([[1.0, 2.0], [3.0, 4.0]]))
        target_model.layers[0].mlp_out.weight.copy_(torch.tensor([[5.0, 6.0], [7.0, 8.0]]))
    model = ComponentModel(
        resid_mlp.as_target(target_model, config), 2, 2, False, torch.Generator().manual_seed(0)
    )
    with torch.no_grad():
        w_in, w_out = model.components["layers-0-mlp_in"], model.components["layers-0-mlp_out"]
        w_in.U.copy_(torch.tensor([[2.0, 1.0], [0.0, 1.0]]))  # (neuron, c)
        w_in.V.copy_(torch.tensor([[1.0, 0.0], [1.0, 1.0]]))  # (c, feature): c0 reads 0, c1 both
        w_out.U.copy_(torch.eye(2))
        w_out.V.copy_(torch.tensor([[3.0, 1.0], [1.0, 4.0]]))  # SPD's W_out = U V, not the target's
    # With W_E = I, feature f, subcomponent c, neuron n: U_in[n, c] V_in[c, f] * W_out_spd[f, n].
    # Feature 0: c0 gives (6, 0), c1 (3, 1): c0. Feature 1: c0 gives (0, 0), c1 (1, 4): c1.
    expected_spd = torch.tensor([[6.0, 0.0], [1.0, 4.0]])
    target = torch.tensor([[5.0, 18.0], [14.0, 32.0]])  # test_neuron_contributions_by_hand
    table = neuron_contribution_table(model).sort_values(["feature", "neuron"])
    torch.testing.assert_close(torch.tensor(table.spd.to_numpy()).view(2, 2), expected_spd)
    torch.testing.assert_close(torch.tensor(table.target.to_numpy()).view(2, 2), target)
    # The CI on the probes prefers the other subcomponent of each feature: it does not decide.
    probes = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    ci = EvaluationCI(
        probes={"layers.0.mlp_in": probes, "layers.0.mlp_out": probes},
        random={"layers.0.mlp_in": probes, "layers.0.mlp_out": probes},
    )
    rows = {
        (layer, metric): value for layer, metric, value, _ in metric_rows(model, ci, EvalConfig())
    }
    assert rows[("layers.0.mlp_in", "neuron_contribution_corr")] == pytest.approx(
        pearson(target, expected_spd)
    )
    # Through the origin: sum(t s) / sum(t t) = (30 + 0 + 14 + 128) / (25 + 324 + 196 + 1024)
    assert rows[("layers.0.mlp_in", "neuron_contribution_slope")] == pytest.approx(172 / 1569)


def test_slope_through_origin():
    from spd.families.resid_mlp.metrics import slope_through_origin

    assert slope_through_origin(
        torch.tensor([1.0, 2.0]), torch.tensor([2.0, 4.0])
    ) == pytest.approx(2.0)
    # no intercept: fitted = t + 0.5 has slope (1.5 + 5) / (1 + 4), not 1
    assert slope_through_origin(
        torch.tensor([1.0, 2.0]), torch.tensor([1.5, 2.5])
    ) == pytest.approx(1.3)
