"""TMS figures (paper figures 1-4 style) from the evaluation's Parquet tables, one page per run.

Each page: target columns vs the sum of subcomponents vs the live subcomponents; the identity
layer's live subcomponents in "-id" variants; CI heatmaps on the one-hot probes; CI histograms
on a random batch (log y); loss curves.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_pdf import PdfPages

from spd.evaluate.table1 import TABLE1_HEADER, table1_cells
from spd.figures.common import (
    ci_heatmap,
    heatmap,
    live_subcomponents,
    loss_axes,
    metrics_text,
    run_title,
)
from spd.io import atomic_path, read_parquet


@dataclass(frozen=True)
class RunTables:
    """The evaluation outputs of one experiment x seed."""

    metrics: pd.DataFrame
    ci_probes: pd.DataFrame
    ci_histogram: pd.DataFrame
    weights: pd.DataFrame
    losses: pd.DataFrame

    @property
    def title(self) -> str:
        return run_title(self.metrics)


def read_run(
    metrics: Path, ci_probes: Path, ci_histogram: Path, weights: Path, losses: Path
) -> RunTables:
    paths = (metrics, ci_probes, ci_histogram, weights, losses)
    return RunTables(*(read_parquet(path) for path in paths))


def _matrix(weights: pd.DataFrame, layer: str, kind: str, subcomponent: int) -> np.ndarray:
    rows = weights[
        (weights.layer == layer) & (weights.kind == kind) & (weights.subcomponent == subcomponent)
    ]
    return rows.pivot(index="row", columns="col", values="value").to_numpy()


def _arrows(ax: Axes, columns: np.ndarray, title: str, colors: list) -> None:
    """Draw each column of a 2 x n matrix as an arrow from the origin."""
    for j in range(columns.shape[1]):
        ax.annotate(
            "",
            xy=columns[:, j],
            xytext=(0, 0),
            arrowprops={"arrowstyle": "->", "color": colors[j], "lw": 2},
        )
    limit = max(1.2 * np.abs(columns).max(), 1e-3)
    ax.set_xlim(-limit, limit)
    ax.set_ylim(-limit, limit)
    ax.set_aspect("equal")
    ax.axhline(0, color="0.85", lw=0.5)
    ax.axvline(0, color="0.85", lw=0.5)
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])


def _weights_row(fig: plt.Figure, grid, run: RunTables) -> None:
    W = _matrix(run.weights, "linear1", "target", -1)
    live = live_subcomponents(run.ci_probes, "linear1")
    pieces = [
        _matrix(run.weights, "linear1", "subcomponent", c)
        for c in sorted(run.weights.subcomponent.unique())
        if c >= 0
    ]
    total = np.sum(pieces, axis=0)
    n_features = W.shape[1]
    colors = [plt.cm.tab10(j % 10) for j in range(n_features)]
    if W.shape[0] == 2:
        _arrows(fig.add_subplot(grid[0]), W, "target W (linear1 columns)", colors)
        _arrows(fig.add_subplot(grid[1]), total, "sum of all subcomponents", colors)
        ax = fig.add_subplot(grid[2])
        for c in live:
            piece = pieces[c]
            j = int(np.abs(piece).sum(axis=0).argmax())
            ax.annotate(
                "",
                xy=piece[:, j],
                xytext=(0, 0),
                arrowprops={"arrowstyle": "->", "color": colors[j], "lw": 2},
            )
            ax.text(*(piece[:, j] * 1.1), str(c), fontsize=7, ha="center")
        _arrows(
            ax, np.zeros((2, 1)) + 1e-9, f"{len(live)} live subcomponents (feature colour)", colors
        )
        limit = 1.2 * np.abs(W).max()
        ax.set_xlim(-limit, limit)
        ax.set_ylim(-limit, limit)
    else:
        heatmap(fig.add_subplot(grid[0]), W, "target W (linear1)", "feature", "hidden")
        heatmap(fig.add_subplot(grid[1]), total, "sum of all subcomponents", "feature", "hidden")
        live_sum = np.sum([pieces[c] for c in live], axis=0) if live else np.zeros_like(W)
        heatmap(
            fig.add_subplot(grid[2]),
            live_sum - W,
            f"{len(live)} live subcomponents' sum - W",
            "feature",
            "hidden",
        )


def _identity_row(fig: plt.Figure, grid, run: RunTables) -> None:
    live = live_subcomponents(run.ci_probes, "hidden")
    panels = [("identity layer (target)", _matrix(run.weights, "hidden", "target", -1))]
    panels += [
        (f"hidden subcomponent {c}", _matrix(run.weights, "hidden", "subcomponent", c))
        for c in live[:2]
    ]
    for slot, (title, matrix) in zip(grid, panels, strict=False):
        heatmap(fig.add_subplot(slot), matrix, title, "in", "out")


def _ci_row(fig: plt.Figure, grid, run: RunTables, layers: list[str]) -> None:
    for slot, layer in zip(grid, layers, strict=False):
        ci_heatmap(fig.add_subplot(slot), run.ci_probes, layer)


def _histogram_row(fig: plt.Figure, grid, run: RunTables, layers: list[str]) -> None:
    for slot, layer in zip(grid, layers, strict=False):
        bins = run.ci_histogram[run.ci_histogram.layer == layer]
        ax = fig.add_subplot(slot)
        ax.stairs(bins["count"], np.append(bins["bin_left"], bins["bin_right"].iloc[-1]), fill=True)
        ax.set_yscale("log")
        ax.set_title(f"CI histogram on the random batch: {layer}", fontsize=9)
        ax.set_xlabel("causal importance", fontsize=8)
        ax.set_ylabel("example x subcomponent count", fontsize=8)
        ax.tick_params(labelsize=7)


def run_page(run: RunTables) -> plt.Figure:
    layers = list(dict.fromkeys(run.ci_probes.layer))
    has_identity = "hidden" in layers
    n_rows = 4 + has_identity
    fig = plt.figure(figsize=(12, 3.4 * n_rows))
    grid = fig.add_gridspec(n_rows, 3, hspace=0.55, wspace=0.35)
    _weights_row(fig, [grid[0, i] for i in range(3)], run)
    next_row = 1
    if has_identity:
        _identity_row(fig, [grid[1, i] for i in range(3)], run)
        next_row = 2
    _ci_row(fig, [grid[next_row, i] for i in range(3)], run, layers)
    _histogram_row(fig, [grid[next_row + 1, i] for i in range(3)], run, layers)
    loss_axes(fig.add_subplot(grid[next_row + 2, 0:2]), run.losses)
    text_ax = fig.add_subplot(grid[next_row + 2, 2])
    text_ax.axis("off")
    text_ax.text(0, 1, metrics_text(run.metrics), family="monospace", fontsize=7, va="top")
    fig.suptitle(f"SPD on {run.title}", fontsize=12)
    return fig


def table1_page(table: pd.DataFrame) -> plt.Figure:
    """Table 1 (mean +- std over seeds, beside the paper's values) as a page of its own."""
    cells = table1_cells(table, plus_minus="±")
    fig, ax = plt.subplots(figsize=(12, 1.2 + 0.4 * len(cells)))
    ax.axis("off")
    ax.table(cellText=cells, colLabels=list(TABLE1_HEADER), loc="center").scale(1, 1.5)
    ax.set_title(
        "Table 1: TMS, linear1 (mean ± sample std over the seeds listed; paper: published values)",
        fontsize=10,
    )
    return fig


def write_tms_figures(
    runs: list[RunTables], destination: str | Path, table: pd.DataFrame | None = None
) -> None:
    """Table 1 (when given) and every run's page into one PDF, written atomically."""
    with atomic_path(destination) as tmp, PdfPages(tmp) as pdf:
        if table is not None:
            fig = table1_page(table)
            pdf.savefig(fig)
            plt.close(fig)
        for run in runs:
            fig = run_page(run)
            pdf.savefig(fig)
            plt.close(fig)
