"""A run's summary, the project's record of it: the headline numbers per layer (which `dvc
metrics` reads), the final losses, and from the run's record its settings hash, steps, seed,
provenance and verdict; and its loss curve as a plain table (for `dvc plots`)."""

from __future__ import annotations

from typing import cast

import pandas as pd

HEADLINE_METRICS = (
    "mmcs",
    "mmcs_std",
    "ml2r",
    "ml2r_std",
    "alive_subcomponents",
    "alive_on_probes",
    "ci_l0@0.01",
    "ci_l0@0.1",
    "ci_pattern_errors",
    "ci_errors_weak_diagonal",
    "ci_errors_off_diagonal",
    "ci_errors_shared",
    "neuron_contribution_corr",
    "neuron_contribution_slope",
    "dense_pattern_errors",
    "ci_per_probe@0.1",
    "ci_per_probe@0.9",
)


RUN_KEYS = ("experiment", "seed", "family", "method", "config_hash", "steps")


def metric_summary(
    metrics: pd.DataFrame, losses: pd.DataFrame, record: dict[str, object]
) -> dict[str, dict[str, object]]:
    """{layer: {metric: value}} for the headline metrics, {"final_loss": {term: value}}, and from
    the run record {"run": {...}, "provenance": {...}, "verdict": {...}}."""
    summary: dict[str, dict[str, object]] = {}
    for row in metrics[metrics.metric.isin(HEADLINE_METRICS)].itertuples():
        summary.setdefault(str(row.layer), {})[str(row.metric)] = round(float(row.value), 6)
    last = losses.sort_values("step").iloc[-1]
    summary["final_loss"] = {name: float(last[name]) for name in loss_terms(losses)}
    summary["run"] = {key: record[key] for key in RUN_KEYS}
    summary["provenance"] = dict(cast(dict[str, object], record["decomposition"]))
    verdict = cast(dict[str, object], record["verdict"])
    summary["verdict"] = {k: v for k, v in verdict.items() if k != "text"}
    return summary


def loss_terms(losses: pd.DataFrame) -> list[str]:
    """The loss columns of a method's loss history (SPD's four and total, or APD's three and total)."""
    return [c for c in losses.columns if c not in ("step", "lr", "experiment", "seed")]


def loss_curve(losses: pd.DataFrame) -> pd.DataFrame:
    return losses[["step", *loss_terms(losses)]].sort_values("step")
