"""A run's headline numbers as a small flat mapping (for `dvc metrics`), and its loss curve as a
plain table (for `dvc plots`); the Parquet tables stay the record."""

from __future__ import annotations

import pandas as pd

HEADLINE_METRICS = ("mmcs", "ml2r", "alive_subcomponents", "ci_l0@0.01", "ci_l0@0.1", "ci_pattern_errors")


def metric_summary(metrics: pd.DataFrame, losses: pd.DataFrame) -> dict[str, dict[str, float]]:
    """{layer: {metric: value}} for the headline metrics, plus {"final_loss": {term: value}}."""
    summary: dict[str, dict[str, float]] = {}
    for row in metrics[metrics.metric.isin(HEADLINE_METRICS)].itertuples():
        summary.setdefault(str(row.layer), {})[str(row.metric)] = round(float(row.value), 6)
    last = losses.sort_values("step").iloc[-1]
    summary["final_loss"] = {name: float(last[name]) for name in loss_terms(losses)}
    return summary


def loss_terms(losses: pd.DataFrame) -> list[str]:
    """The loss columns of a method's loss history (SPD's four and total, or APD's three and total)."""
    return [c for c in losses.columns if c not in ("step", "lr", "experiment", "seed")]


def loss_curve(losses: pd.DataFrame) -> pd.DataFrame:
    return losses[["step", *loss_terms(losses)]].sort_values("step")
