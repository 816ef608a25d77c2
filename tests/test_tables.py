import numpy as np
import pandas as pd
import pytest
import torch

from spd.config import ConfigError
from spd.evaluate.exports import ci_histogram_table, long_table
from spd.evaluate.table1 import table1, table1_markdown
from spd.io import CheckpointError, read_parquet, write_parquet


def _metrics(rows):
    frame = pd.DataFrame(rows, columns=["experiment", "seed", "layer", "metric", "value"])
    frame["config_hash"] = "abc"
    return frame


def test_table1_mean_and_sample_std_over_seeds_beside_the_paper():
    metrics = _metrics(
        [
            ("tms_5-2", 0, "linear1", "mmcs", 1.0),
            ("tms_5-2", 1, "linear1", "mmcs", 0.998),
            ("tms_5-2", 0, "linear1", "ml2r", 0.99),
            ("tms_5-2", 1, "linear1", "ml2r", 1.01),
            ("tms_5-2", 0, "linear2", "ml2r", 5.0),  # other layers are not in the table
            ("tms_5-2", 0, "linear1", "alive_subcomponents", 5),
        ]
    )
    table = table1(metrics).set_index("metric")
    assert table.loc["mmcs", "mean"] == pytest.approx(0.999)
    assert table.loc["mmcs", "std"] == pytest.approx(0.002 / 2**0.5)
    assert table.loc["ml2r", "mean"] == pytest.approx(1.0)
    assert table.loc["ml2r", "std"] == pytest.approx(0.02 / 2**0.5)
    assert table.loc["ml2r", "seeds"] == "0,1"
    assert table.loc["ml2r", "paper"] == pytest.approx(0.993)
    assert "| tms_5-2 | SPD | 0,1 | 0.9990 +- 0.0014 | 1.000 | 1.0000 +- 0.0141 | 0.993 |" in (
        table1_markdown(table.reset_index())
    )


def test_table1_one_seed_has_zero_std_shows_its_value_alone_and_unknown_experiments_no_paper_value():
    table = table1(
        _metrics([("toy", 3, "linear1", "mmcs", 0.5), ("toy", 3, "linear1", "ml2r", 2.0)])
    )
    assert list(table["std"]) == [0.0, 0.0]
    assert table["paper"].isna().all()
    assert "| toy | SPD | 3 | 0.5000 | - |" in table1_markdown(table)


def test_table1_keeps_methods_apart_with_their_paper_values():
    metrics = _metrics(
        [
            ("tms_5-2", 0, "linear1", "ml2r", 1.0),
            ("tms_5-2_apd", 0, "linear1", "ml2r", 0.9),
            ("tms_5-2_apd", 1, "linear1", "ml2r", 0.8),
        ]
    )
    metrics["method"] = ["spd", "apd", "apd"]
    table = table1(metrics).set_index(["experiment", "method"])
    assert table.loc[("tms_5-2_apd", "apd"), "mean"] == pytest.approx(0.85)
    assert table.loc[("tms_5-2_apd", "apd"), "paper"] == pytest.approx(0.893)
    assert table.loc[("tms_5-2", "spd"), "n_seeds"] == 1


def test_table1_refuses_rows_from_different_configs():
    metrics = _metrics([("toy", 0, "linear1", "mmcs", 1.0), ("toy", 1, "linear1", "mmcs", 1.0)])
    metrics.loc[1, "config_hash"] = "def"
    with pytest.raises(ConfigError, match="experiment 'toy'.*different configs"):
        table1(metrics)


def test_ci_histogram_counts_every_value_once_in_equal_bins():
    ci = {"linear1": torch.tensor([[0.0, 0.05, 0.5], [0.99, 1.0, 0.26]])}
    table = ci_histogram_table(ci, n_bins=4)
    assert list(table["count"]) == [2, 1, 1, 2]  # [0, .25) [.25, .5) [.5, .75) [.75, 1]
    assert list(table["bin_left"]) == [0.0, 0.25, 0.5, 0.75]


def test_long_table_has_constants_indices_then_values_one_row_per_entry_row_major():
    values = {
        "ci": torch.tensor([[0.5, 0.25, 1.0], [0.0, 0.75, 0.125]]),
        "count": torch.tensor([[3, 1, 4], [1, 5, 9]]),
    }
    table = long_table(values, ("probe", "subcomponent"), {"layer": "linear1", "seed": 7})
    expected = pd.DataFrame(
        {
            "layer": ["linear1"] * 6,
            "seed": [7] * 6,
            "probe": np.array([0, 0, 0, 1, 1, 1], dtype=np.int64),
            "subcomponent": np.array([0, 1, 2, 0, 1, 2], dtype=np.int64),
            "ci": np.array([0.5, 0.25, 1.0, 0.0, 0.75, 0.125], dtype=np.float32),
            "count": np.array([3, 1, 4, 1, 5, 9], dtype=np.int64),
        }
    )
    pd.testing.assert_frame_equal(table, expected, check_exact=True)
    with pytest.raises(ValueError, match="shapes"):
        long_table({"a": torch.zeros(2, 3), "b": torch.zeros(3, 2)}, ("row", "col"))
    with pytest.raises(ValueError, match="shapes"):
        long_table({"a": torch.zeros(2, 3)}, ("row",))
    with pytest.raises(ValueError, match="repeat"):
        long_table({"row": torch.zeros(2, 3)}, ("row", "col"))


def test_ci_curves_are_the_ci_on_one_feature_scaled_from_0_to_1():
    from conftest import tms_component_model

    from spd.evaluate.causal_importance_metrics import causal_importances_on
    from spd.evaluate.exports import ci_curve_table

    model = tms_component_model(5, 2, identity=False, C=6, d_gate=4)
    table = ci_curve_table(model, 5, leaky_alpha=0.01, n_points=5, floor=0.0)
    assert set(table.layer) == {"linear1", "linear2"}
    assert sorted(table.x.unique()) == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert len(table) == 2 * 6 * 5 * 5  # layers x subcomponents x features x values
    probe = causal_importances_on(model, 0.75 * torch.eye(5), 0.01)["linear1"]
    at = table[(table.layer == "linear1") & (table.x == 0.75)].pivot(
        index="feature", columns="subcomponent", values="ci"
    )
    assert torch.allclose(torch.tensor(at.to_numpy(), dtype=probe.dtype), probe, atol=1e-6)
    # a floor keeps only the subcomponents that reach it somewhere on the layer's curves
    kept = ci_curve_table(model, 5, leaky_alpha=0.01, n_points=5, floor=0.5)
    for _, rows in kept.groupby("layer"):
        assert (rows.groupby("subcomponent").ci.max() >= 0.5).all()


def test_truncated_parquet_is_rejected_with_its_name(tmp_path):
    path = tmp_path / "metrics.parquet"
    write_parquet(pd.DataFrame({"a": range(100)}), path)
    path.write_bytes(path.read_bytes()[:-20])
    with pytest.raises(CheckpointError, match="metrics.parquet: unreadable Parquet table"):
        read_parquet(path)
