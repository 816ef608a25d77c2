import pytest
import torch

from spd.evaluate.causal_importance_metrics import (
    alive_mask,
    ci_l0,
    ci_pattern_error_kinds,
    ci_pattern_rows,
)
from spd.families.tms.metrics import feature_match, feature_match_rows


def _values(U, V, W) -> dict[str, float]:
    return {metric: value for _, metric, value, _ in feature_match_rows(*feature_match(U, V, W))}


def test_mmcs_and_ml2r_on_exact_components_are_one():
    W = torch.tensor([[1.0, 0.0, 0.6], [0.0, 2.0, 0.8]])  # d_hidden 2, 3 features
    U = W.clone()  # subcomponent c writes column c
    V = torch.eye(3)  # and reads feature c
    values = _values(U, V, W)
    assert values["mmcs"] == pytest.approx(1.0) and values["mmcs_std"] == pytest.approx(0.0)
    assert values["ml2r"] == pytest.approx(1.0) and values["ml2r_std"] == pytest.approx(0.0)


def test_ml2r_measures_shrinkage_and_mmcs_direction():
    W = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    # feature 0: right direction, half length; feature 1: 45 degrees off, length sqrt(2)
    U = torch.tensor([[0.5, 1.0], [0.0, 1.0]])
    V = torch.eye(2)
    cosines, ratios = feature_match(U, V, W)
    torch.testing.assert_close(cosines, torch.tensor([1.0, 2**-0.5]))
    torch.testing.assert_close(ratios, torch.tensor([0.5, 2**0.5]))
    values = _values(U, V, W)
    assert values["mmcs"] == pytest.approx((1 + 2**-0.5) / 2)
    assert values["ml2r"] == pytest.approx((0.5 + 2**0.5) / 2)
    # the sample standard deviation of two values a, b is |a - b| / sqrt(2)
    assert values["mmcs_std"] == pytest.approx((1 - 2**-0.5) / 2**0.5)
    assert values["ml2r_std"] == pytest.approx((2**0.5 - 0.5) / 2**0.5)


def test_best_match_is_chosen_by_cosine_among_many_subcomponents():
    W = torch.tensor([[1.0], [0.0]])
    U = torch.tensor([[0.0, 3.0, 2.0], [1.0, 3.0, 0.0]])  # c=2 is aligned (cos 1, length 2)
    V = torch.ones(3, 1)
    cosines, ratios = feature_match(U, V, W)
    assert cosines.item() == pytest.approx(1.0)
    assert ratios.item() == pytest.approx(2.0)


def test_alive_and_l0():
    ci = torch.tensor([[0.0, 0.05, 0.5], [0.0, 0.02, 0.0]])
    assert alive_mask(ci, 0.1).tolist() == [False, False, True]
    assert ci_l0(ci, 0.01) == pytest.approx((2 + 1) / 2)
    assert ci_l0(ci, 0.1) == pytest.approx(0.5)


NO_ERRORS = {"weak_diagonal": 0, "off_diagonal": 0, "shared": 0}


def test_ci_pattern_errors_zero_for_a_permuted_diagonal():
    ci = torch.tensor([[0.0, 0.95, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0], [0.92, 0.05, 0.0, 0.0]])
    assert ci_pattern_error_kinds(ci, diag_min=0.9, offdiag_max=0.1) == NO_ERRORS


def test_ci_pattern_errors_counts_weak_diagonal_offdiagonal_and_shared():
    weak = torch.tensor([[0.5, 0.0], [0.0, 1.0]])
    assert ci_pattern_error_kinds(weak, 0.9, 0.1) == NO_ERRORS | {"weak_diagonal": 1}
    leaky = torch.tensor([[1.0, 0.3], [0.0, 1.0]])
    assert ci_pattern_error_kinds(leaky, 0.9, 0.1) == NO_ERRORS | {"off_diagonal": 1}
    shared = torch.tensor([[1.0, 0.0], [1.0, 0.0]])  # both probes use subcomponent 0
    assert ci_pattern_error_kinds(shared, 0.9, 0.1) == NO_ERRORS | {"shared": 1}


def test_ci_pattern_error_kinds_split_the_count():
    # probe 0: its own subcomponent at 0.5 (weak); probe 1 leaks 0.3 and 0.2 into subcomponents 0
    # and 2 (two off-diagonal); probes 2 and 3 both use subcomponent 3 (one shared)
    ci = torch.tensor(
        [
            [0.5, 0.0, 0.0, 0.0],
            [0.3, 1.0, 0.2, 0.0],
            [0.0, 0.0, 0.0, 0.95],
            [0.0, 0.0, 0.05, 1.0],
        ]
    )
    assert ci_pattern_error_kinds(ci, 0.9, 0.1) == {
        "weak_diagonal": 1,
        "off_diagonal": 2,
        "shared": 1,
    }


def test_ci_pattern_rows_give_the_total_then_each_kind():
    from spd.config import EvalConfig

    config = EvalConfig(diag_min=0.9, offdiag_max=0.1)
    # probe 0 weak (0.8) and leaking into subcomponent 1 (0.2): two errors of two kinds
    rows = ci_pattern_rows("linear2", torch.tensor([[0.8, 0.2], [0.0, 1.0]]), config)
    assert rows == [
        ("linear2", "ci_pattern_errors", 2, "count"),
        ("linear2", "ci_errors_weak_diagonal", 1, "count"),
        ("linear2", "ci_errors_off_diagonal", 1, "count"),
        ("linear2", "ci_errors_shared", 0, "count"),
    ]


def _tms_id_rows(probes: dict, random: dict, random_inputs=None) -> dict:
    from conftest import tms_component_model

    from spd.config import EvalConfig, TMSTargetConfig
    from spd.evaluate.causal_importance_metrics import EvaluationCI
    from spd.evaluate.report import metric_rows

    model = tms_component_model(5, 2, identity=True, C=4, d_gate=2)
    target = TMSTargetConfig(n_features=5, d_hidden=2, identity_layer=True)
    ci = EvaluationCI(probes=probes, random=random, random_inputs=random_inputs)
    return {
        (r["layer"], r["metric"]): r["value"] for r in metric_rows(model, ci, target, EvalConfig())
    }


def test_tms_alive_on_probes_counts_the_probes_alone():
    probes = torch.zeros(5, 4)
    probes[0, 0] = 0.5  # alive on a probe
    probes[1, 1] = 0.1  # at the threshold on the probes: alive only through the random batch
    random = torch.zeros(3, 4)
    random[2, 1] = 0.5
    layers = ("linear1", "linear2", "hidden")
    rows = _tms_id_rows({name: probes for name in layers}, {name: random for name in layers})
    for name in layers:
        assert rows[(name, "alive_on_probes")] == 1
        assert rows[(name, "alive_subcomponents")] == 2


def test_identity_layer_reports_the_active_fraction_on_non_empty_random_inputs():
    random_inputs = torch.tensor(
        [
            [0.0, 0.3, 0.0, 0.0, 0.0],
            [0.5, 0.0, 0.0, 0.2, 0.0],
            [0.0, 0.0, 0.0, 0.0, 0.7],
            [0.0, 0.0, 0.0, 0.0, 0.0],  # empty: left out
        ]
    )
    hidden = torch.tensor(
        [  # random-batch CI, one column per subcomponent
            [0.95, 0.95, 0.5, 0.0],
            [0.9, 0.95, 0.0, 0.0],
            [0.2, 0.95, 0.0, 0.0],
            [0.99, 0.0, 0.0, 0.0],
        ]
    )
    # Of the 3 non-empty inputs at CI >= 0.9: subcomponent 0 on 2, 1 on 3, 2 (alive) on none;
    # 3 is dead and left out.
    zeros = torch.zeros(5, 4)
    probes = {"linear1": zeros, "linear2": zeros, "hidden": zeros}
    random = {"linear1": torch.zeros(4, 4), "linear2": torch.zeros(4, 4), "hidden": hidden}
    rows = _tms_id_rows(probes, random, random_inputs)
    assert rows[("hidden", "ci_active_fraction_min")] == 0.0
    assert rows[("hidden", "ci_active_fraction_mean")] == pytest.approx((2 / 3 + 1 + 0) / 3)
    # without the random inputs there is nothing to report
    assert ("hidden", "ci_active_fraction_mean") not in _tms_id_rows(probes, random)
