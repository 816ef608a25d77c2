"""The default figure page of a toy family without a page of its own: per run, the CI of every
decomposed layer on the one-hot probes, its metrics and its losses."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.backends.backend_pdf import PdfPages

from spd.figures.common import ci_heatmap, loss_axes, metrics_text, run_title
from spd.io import atomic_path, read_parquet


@dataclass(frozen=True)
class CIRunTables:
    metrics: pd.DataFrame
    ci_probes: pd.DataFrame
    losses: pd.DataFrame


def read_ci_run(metrics: Path, ci_probes: Path, losses: Path) -> CIRunTables:
    return CIRunTables(*(read_parquet(path) for path in (metrics, ci_probes, losses)))


def ci_run_page(run: CIRunTables) -> plt.Figure:
    layers = list(dict.fromkeys(run.ci_probes.layer))
    n_rows = len(layers) + 1
    fig = plt.figure(figsize=(11, 3.6 * n_rows))
    grid = fig.add_gridspec(n_rows, 2, hspace=0.6, wspace=0.35)
    for row, layer in enumerate(layers):
        ci_heatmap(fig.add_subplot(grid[row, 0]), run.ci_probes, layer)
        text_ax = fig.add_subplot(grid[row, 1])
        text_ax.axis("off")
        layer_metrics = run.metrics[run.metrics.layer == layer]
        text_ax.text(0, 1, metrics_text(layer_metrics), family="monospace", fontsize=7, va="top")
    loss_axes(fig.add_subplot(grid[n_rows - 1, :]), run.losses)
    fig.suptitle(f"SPD on {run_title(run.metrics)}: causal importances", fontsize=12)
    return fig


def write_ci_figures(runs: list[CIRunTables], destination: str | Path) -> None:
    """Every run's page into one PDF, written atomically."""
    with atomic_path(destination) as tmp, PdfPages(tmp) as pdf:
        for run in runs:
            fig = ci_run_page(run)
            pdf.savefig(fig)
            plt.close(fig)
