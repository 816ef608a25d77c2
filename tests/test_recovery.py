from spd.config import TMSTargetConfig
from spd.families.tms.verdict import recovery_failures as tms_recovery_failures


def _rows(**overrides):
    values = {
        ("linear1", "mmcs"): 1.0,
        ("linear1", "ml2r"): 1.0,
        ("linear1", "alive_subcomponents"): 5,
        ("linear2", "alive_subcomponents"): 5,
        ("hidden", "alive_subcomponents"): 2,
        ("linear1", "ci_pattern_errors"): 0,
        ("linear2", "ci_pattern_errors"): 0,
    }
    for key, value in overrides.items():
        layer, metric = key.split("__")
        values[(layer, metric)] = value
    return [
        {"layer": layer, "metric": metric, "value": value}
        for (layer, metric), value in values.items()
    ]


PLAIN = TMSTargetConfig(n_features=5, d_hidden=2)
WITH_ID = TMSTargetConfig(n_features=5, d_hidden=2, identity_layer=True)


def test_full_recovery_has_no_failures():
    assert tms_recovery_failures(_rows(), PLAIN) == []
    assert tms_recovery_failures(_rows(), WITH_ID) == []


def test_each_threshold_is_reported():
    assert tms_recovery_failures(_rows(linear1__mmcs=0.998), PLAIN) == ["MMCS 0.9980 < 0.999"]
    assert "ML2R" in tms_recovery_failures(_rows(linear1__ml2r=0.97), PLAIN)[0]
    assert "ML2R" in tms_recovery_failures(_rows(linear1__ml2r=1.05), PLAIN)[0]
    assert tms_recovery_failures(_rows(linear2__alive_subcomponents=6), PLAIN) == [
        "linear2: 6 alive subcomponents, expected 5"
    ]
    assert tms_recovery_failures(_rows(hidden__alive_subcomponents=3), WITH_ID) == [
        "hidden: 3 alive subcomponents, expected 2"
    ]
    assert tms_recovery_failures(_rows(hidden__alive_subcomponents=3), PLAIN) == []
    assert tms_recovery_failures(_rows(linear1__ci_pattern_errors=2), PLAIN) == [
        "linear1: 2 CI-pattern errors"
    ]


def test_ci_pattern_failure_names_each_kind_where_the_table_has_them():
    rows = _rows(
        linear2__ci_pattern_errors=22,
        linear2__ci_errors_weak_diagonal=1,
        linear2__ci_errors_off_diagonal=20,
        linear2__ci_errors_shared=1,
    )
    assert tms_recovery_failures(rows, PLAIN) == [
        "linear2: 22 CI-pattern errors (1 weak diagonal, 20 off diagonal, 1 shared)"
    ]


def test_expected_alive_per_layer_for_both_families():
    from spd.config import ResidMLPTargetConfig
    from spd.evaluate.recovery import expected_alive

    assert expected_alive(WITH_ID) == {"linear1": 5, "linear2": 5, "hidden": 2}
    resid = ResidMLPTargetConfig(family="resid_mlp", n_features=10, d_embed=20, d_mlp=3, n_layers=2)
    assert expected_alive(resid) == {
        "layers.0.mlp_in": 10,
        "layers.0.mlp_out": 3,
        "layers.1.mlp_in": 10,
        "layers.1.mlp_out": 3,
    }


def test_recovery_summary_keeps_live_surplus_and_shortfall_apart_and_sums_errors():
    from spd.evaluate.recovery import recovery_summary

    rows = _rows(
        linear1__alive_subcomponents=7, hidden__alive_subcomponents=1, linear2__ci_pattern_errors=3
    )
    summary = recovery_summary(rows, WITH_ID)
    assert summary == {
        "mmcs": 1.0,
        "ml2r": 1.0,
        "alive_surplus": 2,
        "alive_shortfall": 1,
        "ci_errors": 3,
        "recovered": False,
    }
    assert recovery_summary(_rows(), WITH_ID)["recovered"] is True
