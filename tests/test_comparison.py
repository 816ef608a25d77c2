import pandas as pd

from spd.evaluate.comparison import comparison_row, convergence_step


def _losses(totals):
    return pd.DataFrame({"step": [100 * i for i in range(len(totals))], "total": totals})


def test_convergence_is_where_the_smoothed_loss_settles_within_ten_percent_of_its_end():
    # Rolling median over 5 records: 10, 10, 10, 10, 10, 1.05, 1.05, 1, 1: within 10% of the final
    # 1 from the sixth record on, step 500.
    losses = _losses([10, 10, 10, 1.05, 1.05, 1, 1, 1, 1])
    assert list(losses["total"].rolling(5, min_periods=1).median()) == [
        10,
        10,
        10,
        10,
        10,
        1.05,
        1.05,
        1,
        1,
    ]
    assert convergence_step(losses) == 500
    assert convergence_step(_losses([1, 1, 1])) == 0  # settled from the first record
    assert (
        convergence_step(_losses([8, 4, 2, 1])) == 300
    )  # smoothed 8, 6, 4, 3: only the last settles


def test_comparison_row_reads_linear1_scores_and_divides_wall_time_by_steps():
    metrics = pd.DataFrame(
        {
            "experiment": "toy",
            "method": "apd",
            "seed": 3,
            "layer": ["linear1", "linear1", "linear2"],
            "metric": ["mmcs", "ml2r", "mmcs"],
            "value": [0.99, 0.9, 0.5],
        }
    )
    row = comparison_row(
        metrics, _losses([10, 10, 10, 1.05, 1.05, 1, 1, 1, 1]), wall_seconds=50.0, steps=1000
    )
    assert row == {
        "experiment": "toy",
        "method": "apd",
        "seed": 3,
        "mmcs": 0.99,
        "ml2r": 0.9,
        "seconds_per_step": 0.05,
        "convergence_step": 500,
        "seconds_to_convergence": 25.0,
    }


def test_restart_candidates_count_in_the_cost_per_step_and_before_convergence():
    metrics = pd.DataFrame(
        {
            "experiment": "toy",
            "method": "spd",
            "seed": 0,
            "layer": ["linear1", "linear1"],
            "metric": ["mmcs", "ml2r"],
            "value": [1.0, 1.0],
        }
    )
    losses = _losses([10, 10, 10, 1.05, 1.05, 1, 1, 1, 1])  # settles at step 500
    row = comparison_row(metrics, losses, wall_seconds=60.0, steps=1000, discarded_steps=200)
    assert row["seconds_per_step"] == 0.05  # 60 s over 1200 steps
    assert row["seconds_to_convergence"] == 0.05 * (500 + 200)
