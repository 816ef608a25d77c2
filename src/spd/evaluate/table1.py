"""Table 1 of the paper: MMCS and ML2R per TMS experiment, mean +- std over seeds, beside the
paper's published values."""

from __future__ import annotations

import pandas as pd

from spd.config import ConfigError

# The paper's reported SPD values (spec section 7), keyed by experiment name: (MMCS, ML2R).
PAPER_SPD_VALUES: dict[str, tuple[float, float]] = {
    "tms_5-2": (1.000, 0.993),
    "tms_40-10": (1.000, 1.010),
    "tms_5-2-id": (1.000, 0.992),
    "tms_40-10-id": (1.000, 1.031),
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
    rows = metrics[(metrics.layer == "linear1") & metrics.metric.isin(TABLE_METRICS)]
    table = (
        rows.groupby(["experiment", "metric"], sort=False)
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
        PAPER_SPD_VALUES.get(name, (float("nan"),) * 2)[TABLE_METRICS.index(metric)]
        for name, metric in zip(table.experiment, table.metric, strict=True)
    ]
    return table


def table1_markdown(table: pd.DataFrame) -> str:
    """Experiments as rows, MMCS and ML2R as 'mean +- std (paper)' columns."""
    lines = [
        "| experiment | seeds | MMCS | paper MMCS | ML2R | paper ML2R |",
        "|---|---|---|---|---|---|",
    ]
    for name, rows in table.groupby("experiment", sort=False):
        by_metric = rows.set_index("metric")
        cells = []
        for metric in TABLE_METRICS:
            row = by_metric.loc[metric]
            paper = "-" if pd.isna(row["paper"]) else f"{row['paper']:.3f}"
            cells += [f"{row['mean']:.4f} +- {row['std']:.4f}", paper]
        lines.append(f"| {name} | {by_metric['seeds'].iloc[0]} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("mean +- sample standard deviation over the SPD seeds listed (one target model per")
    lines.append("experiment); paper: the SPD values reported by Bushnaq, Braun, Sharkey (2025).")
    return "\n".join(lines) + "\n"
