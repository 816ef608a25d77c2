import math

import pandas as pd
import pytest
import torch
import yaml
from conftest import TINY_RESID_MLP

from spd.cli import main
from spd.config import ResidMLPTargetConfig
from spd.evaluate.resid_mlp import pearson
from spd.targets import resid_mlp

CONFIG = ResidMLPTargetConfig(family="resid_mlp", n_features=6, d_embed=10, d_mlp=3, n_layers=2)


def test_forward_shapes_and_decomposed_layers():
    torch.manual_seed(0)
    model = resid_mlp.build_model(CONFIG)
    assert model(torch.zeros(7, 6)).shape == (7, 6)
    target = resid_mlp.as_target(model, CONFIG)
    assert target.decomposed_modules == (
        "layers.0.mlp_in", "layers.0.mlp_out", "layers.1.mlp_in", "layers.1.mlp_out"
    )
    assert model.get_submodule("layers.1.mlp_in").weight.shape == (3, 10)
    assert model.get_submodule("layers.1.mlp_out").weight.shape == (10, 3)


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
        resid_mlp.neuron_contributions(model, 0, W_in=only_first_row), torch.tensor([[5.0, 0.0], [0.0, 0.0]])
    )


def test_pearson():
    assert pearson(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([2.0, 4.0, 6.0])) == pytest.approx(1.0)
    assert pearson(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([3.0, 2.0, 1.0])) == pytest.approx(-1.0)


def test_tiny_resid_mlp_run_end_to_end(tmp_path):
    path = tmp_path / "resid.yaml"
    path.write_text(yaml.safe_dump(TINY_RESID_MLP))
    assert main(["run", "--config", str(path), "--out", str(tmp_path / "run")]) == 0
    metrics = pd.read_parquet(tmp_path / "run" / "metrics.parquet")
    by_key = {(r.layer, r.metric): r.value for r in metrics.itertuples()}
    for layer in (0, 1):
        assert (f"layers.{layer}.mlp_in", "ci_pattern_errors") in by_key
        assert -1 <= by_key[(f"layers.{layer}.mlp_in", "neuron_contribution_corr")] <= 1
        active = by_key[(f"layers.{layer}.mlp_out", "active_on_every_probe")]
        assert 0 <= active <= by_key[(f"layers.{layer}.mlp_out", "alive_subcomponents")]
    assert all(math.isfinite(v) for v in metrics["value"])
    assert set(metrics["family"]) == {"resid_mlp"}
    target = torch.load(tmp_path / "run" / "target.pt", weights_only=True)
    assert target["config"]["family"] == "resid_mlp"
    contributions = pd.read_parquet(tmp_path / "run" / "neuron_contributions.parquet")
    assert len(contributions) == 2 * 8 * 4  # layers x features x neurons
    assert main(["figures", str(tmp_path / "run"), "--out", str(tmp_path / "resid.pdf")]) == 0
    assert (tmp_path / "resid.pdf").read_bytes().startswith(b"%PDF")


def test_w_out_counts_live_subcomponents_active_on_every_probe_and_the_active_share():
    from spd.config import EvalConfig
    from spd.decomp.component_model import ComponentModel
    from spd.evaluate.causal_importance_metrics import EvaluationCI
    from spd.evaluate.resid_mlp import metric_rows

    one_layer = ResidMLPTargetConfig(family="resid_mlp", n_features=3, d_embed=10, d_mlp=3, n_layers=1)
    target = resid_mlp.as_target(resid_mlp.build_model(one_layer), one_layer).restricted_to(["layers.0.mlp_out"])
    model = ComponentModel(target, 4, 2, False, torch.Generator().manual_seed(0))
    # Subcomponent 0 active on all 3 probes, 1 on two of them, 2 dead, 3 alive only on random inputs.
    probes = torch.tensor([[1.0, 0.95, 0.0, 0.0], [0.9, 0.2, 0.0, 0.0], [0.99, 0.91, 0.0, 0.05]])
    random = torch.tensor([[0.0, 0.0, 0.0, 0.5]])
    ci = EvaluationCI(probes={"layers.0.mlp_out": probes}, random={"layers.0.mlp_out": random})
    rows = {(layer, metric): value for layer, metric, value, _ in metric_rows(model, ci, EvalConfig())}
    assert rows[("layers.0.mlp_out", "active_on_every_probe")] == 1
    # live: 0, 1, 3; active pairs: 3 + 2 + 0 of 3 x 3
    assert rows[("layers.0.mlp_out", "active_probe_fraction")] == pytest.approx(5 / 9)


def test_w_out_dense_pattern_errors_and_neuron_alignment_by_hand():
    from spd.config import EvalConfig
    from spd.decomp.component_model import ComponentModel
    from spd.evaluate.causal_importance_metrics import EvaluationCI
    from spd.evaluate.resid_mlp import metric_rows

    one_layer = ResidMLPTargetConfig(family="resid_mlp", n_features=3, d_embed=10, d_mlp=2, n_layers=1)
    target = resid_mlp.as_target(resid_mlp.build_model(one_layer), one_layer).restricted_to(["layers.0.mlp_out"])
    model = ComponentModel(target, 4, 2, False, torch.Generator().manual_seed(0))
    with torch.no_grad():  # read directions: neuron 0; neuron 1 scaled; 45 degrees; dead
        model.components["layers-0-mlp_out"].V.copy_(torch.tensor([[1.0, 0.0], [0.0, -3.0], [1.0, 1.0], [1.0, 1.0]]))
    # The d_mlp = 2 densest columns are 0 and 2; column 2 never reaches 0.9 (1 error); column 1
    # lies outside the block with two entries above 0.1 (2 errors); column 3 stays at 0.1 (none).
    probes = torch.tensor([[1.0, 0.5, 0.8, 0.1], [0.95, 0.3, 0.85, 0.0], [0.9, 0.05, 0.8, 0.1]])
    random = torch.tensor([[0.0, 0.0, 0.0, 0.0]])
    ci = EvaluationCI(probes={"layers.0.mlp_out": probes}, random={"layers.0.mlp_out": random})
    rows = {(layer, metric): value for layer, metric, value, _ in metric_rows(model, ci, EvalConfig())}
    assert rows[("layers.0.mlp_out", "dense_pattern_errors")] == 3
    # live: 0, 1, 2 (3 never exceeds 0.1): cosines 1, 1 and 1/sqrt(2)
    assert rows[("layers.0.mlp_out", "neuron_alignment")] == pytest.approx((2 + 2**-0.5) / 3)
