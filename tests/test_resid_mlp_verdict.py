"""The residual-MLP W_out evaluation on hand-made CI matrices, through the metric rows: the verdict
(d_mlp +- 2 live subcomponents and the dense-columns test) and the informative co-activation counts."""

import pytest
import torch

from spd.config import EvalConfig, ResidMLPTargetConfig
from spd.decomp.component_model import ComponentModel
from spd.evaluate.causal_importance_metrics import EvaluationCI
from spd.evaluate.report import metric_rows
from spd.families.resid_mlp import model as resid_mlp
from spd.families.resid_mlp.verdict import recovery_failures as resid_mlp_recovery_failures

W_OUT = "layers.0.mlp_out"
# 6 features, d_mlp 2: the W_out ground truth is 2 dense columns (live count 0 to 4 allowed).
ONE_LAYER = ResidMLPTargetConfig(family="resid_mlp", n_features=6, d_embed=10, d_mlp=2, n_layers=1)
C = 10


def _rows(probes: torch.Tensor, random: torch.Tensor) -> list[dict[str, object]]:
    torch.manual_seed(0)
    target = resid_mlp.as_target(resid_mlp.build_model(ONE_LAYER), ONE_LAYER).restricted_to([W_OUT])
    model = ComponentModel(target, C, 2, False, torch.Generator().manual_seed(0))
    ci = EvaluationCI(probes={W_OUT: probes}, random={W_OUT: random})
    return metric_rows(model, ci, ONE_LAYER, EvalConfig())


def _failures(probes: torch.Tensor, random: torch.Tensor) -> list[str]:
    return resid_mlp_recovery_failures(_rows(probes, random), ONE_LAYER)


def test_two_dense_columns_each_reaching_0_9_on_some_probe_pass():
    probes = torch.zeros(6, C)
    # Neither is active on every probe: each reaches 0.9 on one or two probes only.
    probes[:, 0] = torch.tensor([0.95, 0.5, 0.3, 0.2, 0.4, 0.92])
    probes[:, 1] = torch.tensor([0.3, 0.91, 0.5, 0.5, 0.2, 0.3])
    probes[2, 5] = 0.1  # at the threshold: not an error, not alive
    assert _failures(probes, torch.zeros(4, C)) == []


def test_w_out_split_per_feature_fails_on_live_count_and_dense_columns():
    probes = torch.zeros(6, C)
    probes[:, :6] = 0.95 * torch.eye(6)  # each subcomponent selective for its own feature
    # 6 live (> 2 + 2); the two densest columns (all tie: the first two) reach 0.9, and each of the
    # other four has one entry above 0.1.
    assert _failures(probes, torch.zeros(4, C)) == [
        f"{W_OUT}: 6 alive subcomponents, expected 2 +- 2",
        f"{W_OUT}: 4 dense-columns errors",
    ]


def test_one_live_subcomponent_beyond_the_tolerance_fails_on_the_count_only():
    probes = torch.zeros(6, C)
    probes[:, 0] = torch.tensor([0.95, 0.5, 0.3, 0.2, 0.4, 0.6])
    probes[:, 1] = torch.tensor([0.3, 0.91, 0.5, 0.5, 0.2, 0.3])
    random = torch.zeros(4, C)
    random[0, 2:5] = 0.5  # three more live, on random inputs only: 5 = d_mlp + 3
    assert _failures(probes, random) == [f"{W_OUT}: 5 alive subcomponents, expected 2 +- 2"]


def test_densest_columns_rank_by_probes_above_0_1_then_by_mass():
    from spd.evaluate.causal_importance_metrics import dense_pattern_errors, densest_columns

    dense = [0.95, 0.95, 0.95, 0.95]
    flat = [0.1, 0.1, 0.1, 0.1]  # the larger CI mass, but no probe above 0.1
    single = [0.3, 0.0, 0.0, 0.0]  # one probe above 0.1
    probes = torch.tensor([dense, flat, single]).T
    assert densest_columns(probes, 0.1).tolist() == [0, 2, 1]
    # Block {dense, single}: `single` never reaches 0.9 (1 error); `flat` stays at 0.1 (none).
    assert dense_pattern_errors(probes, 2, 0.9, 0.1) == 1


def test_co_activation_counts_per_probe_above_0_1_and_at_least_0_9():
    probes = torch.zeros(6, C)
    probes[0, :4] = torch.tensor([0.95, 0.91, 0.1, 0.0])  # above 0.1: 2; >= 0.9: 2
    probes[1, :4] = torch.tensor([0.9, 0.05, 0.2, 0.89])  # 3; 1
    probes[2, :4] = torch.tensor([0.3, 0.92, 0.0, 0.11])  # 3; 1
    value = {(r["layer"], r["metric"]): r["value"] for r in _rows(probes, torch.zeros(4, C))}
    assert value[(W_OUT, "ci_per_probe@0.1")] == pytest.approx(8 / 6)
    assert value[(W_OUT, "ci_per_probe@0.9")] == pytest.approx(4 / 6)
