"""Table 1 of the paper: MMCS and ML2R per TMS experiment and method (SPD, APD), mean +- std over
seeds, beside the paper's published values."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from spd.config import ConfigError
from spd.io import read_parquet

# The paper's reported values (docs/method.md), keyed by params.yaml's experiment
# names: (MMCS, ML2R).
PAPER_VALUES: dict[str, tuple[float, float]] = {
    "tms_5-2": (1.000, 0.993),
    "tms_40-10": (1.000, 1.010),
    "tms_5-2-id": (1.000, 0.992),
    "tms_40-10-id": (1.000, 1.031),
    "tms_5-2_apd": (0.998, 0.893),
    "tms_40-10_apd": (0.996, 0.935),
    "tms_40-10_apd_apd-target": (0.996, 0.935),  # the target the APD paper's run decomposed
}
TABLE_METRICS = ("mmcs", "ml2r")


def check_single_config(metrics: pd.DataFrame) -> None:
    """Refuse to combine rows of one experiment that were made with different configs."""
    hashes = metrics.groupby("experiment")["config_hash"].unique()
    mixed = {name: sorted(values) for name, values in hashes.items() if len(values) > 1}
    if mixed:
        name, values = next(iter(mixed.items()))
        raise ConfigError(
            f"experiment '{name}': metric rows come from different configs ({', '.join(values)}); "
            "rerun its seeds with one config"
        )


def table1(metrics: pd.DataFrame) -> pd.DataFrame:
    """One row per experiment x metric: mean, sample std (ddof 1; 0 for one seed) over seeds."""
    check_single_config(metrics)
    if "method" not in metrics:
        metrics = metrics.assign(method="spd")
    rows = metrics[(metrics.layer == "linear1") & metrics.metric.isin(TABLE_METRICS)]
    table = (
        rows.groupby(["experiment", "method", "metric"], sort=False)
        .agg(
            mean=("value", "mean"),
            std=("value", "std"),
            n_seeds=("value", "count"),
            seeds=("seed", lambda seeds: ",".join(str(s) for s in sorted(seeds))),
        )
        .reset_index()
    )
    table["std"] = table["std"].fillna(0.0)
    table["paper"] = [
        PAPER_VALUES.get(name, (float("nan"),) * 2)[TABLE_METRICS.index(metric)]
        for name, metric in zip(table.experiment, table.metric, strict=True)
    ]
    return table


TABLE1_COLUMNS = ("experiment", "method", "metric", "mean", "std", "n_seeds", "seeds", "paper")


def read_table1(path: Path) -> pd.DataFrame:
    """A Table 1 that `spd table1` wrote (its parquet), checked to have Table 1's columns."""
    table = read_parquet(path)
    missing = [column for column in TABLE1_COLUMNS if column not in table.columns]
    if missing:
        raise ConfigError(
            f"{path}: not a Table 1 (no column {', '.join(map(repr, missing))}); "
            "`spd table1` writes one"
        )
    return table


TABLE1_HEADER = ("experiment", "method", "seeds", "MMCS", "paper MMCS", "ML2R", "paper ML2R")


def table1_cells(table: pd.DataFrame, plus_minus: str = "+-") -> list[list[str]]:
    """Experiments as rows, MMCS and ML2R as 'mean +- std' cells (the value alone for one seed),
    each followed by the paper's."""
    cells = []
    for name, rows in table.groupby("experiment", sort=False):
        by_metric = rows.set_index("metric")
        row = [str(name), by_metric["method"].iloc[0].upper(), by_metric["seeds"].iloc[0]]
        for metric in TABLE_METRICS:
            values = by_metric.loc[metric]
            paper = "-" if pd.isna(values["paper"]) else f"{values['paper']:.3f}"
            spread = f" {plus_minus} {values['std']:.4f}" if values["n_seeds"] > 1 else ""
            row += [f"{values['mean']:.4f}{spread}", paper]
        cells.append(row)
    return cells


def table1_markdown(table: pd.DataFrame) -> str:
    lines = ["| " + " | ".join(TABLE1_HEADER) + " |", "|" + "---|" * len(TABLE1_HEADER)]
    lines += ["| " + " | ".join(row) + " |" for row in table1_cells(table)]
    lines.append("")
    lines.append(
        "mean +- sample standard deviation over the decomposition seeds listed (a single seed's value"
    )
    lines.append(
        "stands alone; one target model per experiment, shared by SPD and APD). Paper: the values"
    )
    lines.append(
        "reported by Bushnaq, Braun, Sharkey (2025); its APD +- is over the features of one run."
    )
    return "\n".join(lines) + "\n"
