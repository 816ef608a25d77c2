"""SPD vs APD at a glance: per run, the ground-truth scores, the cost per step and the time until
the loss stops moving."""

from __future__ import annotations

import numpy as np
import pandas as pd

CONVERGENCE_TOLERANCE = 0.1  # relative distance of the smoothed total loss from its final value
SMOOTHING_RECORDS = 5  # rolling median over this many loss records


def convergence_step(losses: pd.DataFrame, tolerance: float = CONVERGENCE_TOLERANCE) -> int:
    """The first recorded step after which the total loss (rolling median of the records) stays
    within `tolerance` of its final value, relative."""
    smooth = losses["total"].rolling(SMOOTHING_RECORDS, min_periods=1).median().to_numpy()
    steps = losses["step"].to_numpy()
    outside = np.flatnonzero(np.abs(smooth - smooth[-1]) > tolerance * abs(smooth[-1]))
    if outside.size == 0:
        return int(steps[0])
    return int(steps[min(outside[-1] + 1, len(steps) - 1)])


def comparison_row(
    metrics: pd.DataFrame,
    losses: pd.DataFrame,
    wall_seconds: float,
    steps: int,
    discarded_steps: int = 0,
) -> dict[str, object]:
    """One run: experiment, method, seed, MMCS, ML2R (linear1), seconds per step (the job's wall
    time over all its steps) and seconds to convergence (that rate times `convergence_step` of the
    kept run, plus `discarded_steps`: SPD restart candidates that were not chosen)."""
    linear1 = metrics[metrics.layer == "linear1"].set_index("metric")["value"]
    per_step = wall_seconds / (steps + discarded_steps)
    settled = convergence_step(losses)
    return {
        "experiment": metrics["experiment"].iloc[0],
        "method": metrics["method"].iloc[0],
        "seed": int(metrics["seed"].iloc[0]),
        "mmcs": float(linear1["mmcs"]),
        "ml2r": float(linear1["ml2r"]),
        "seconds_per_step": per_step,
        "convergence_step": settled,
        "seconds_to_convergence": per_step * (settled + discarded_steps),
    }
