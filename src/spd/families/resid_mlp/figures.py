"""Residual-MLP figures (paper figures 6, 7, 10-13 style) from the evaluation's Parquet tables.

Per run, per layer: the neuron contributions of features 0-9 (target vs SPD's best-matching W_in
subcomponent), the all-features target-vs-SPD scatter, and the CI heatmaps of W_in and W_out on
the one-hot probes beside the layer's metrics; then the loss curves.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.ticker import MaxNLocator

from spd.figures.common import ci_heatmap, loss_axes, metrics_text, run_title
from spd.io import atomic_path, read_parquet

FEATURES_SHOWN = 10


@dataclass(frozen=True)
class ResidRunTables:
    metrics: pd.DataFrame
    ci_probes: pd.DataFrame
    neuron_contributions: pd.DataFrame
    losses: pd.DataFrame

    @property
    def title(self) -> str:
        return run_title(self.metrics)


def read_resid_run(
    metrics: Path, ci_probes: Path, contributions: Path, losses: Path
) -> ResidRunTables:
    return ResidRunTables(
        *(read_parquet(path) for path in (metrics, ci_probes, contributions, losses))
    )


def _contribution_bars(fig: plt.Figure, slot, contributions: pd.DataFrame, layer: int) -> None:
    """Features 0-9, one small panel each: target (bars) and SPD (dots) contribution per neuron."""
    inner = slot.subgridspec(2, FEATURES_SHOWN // 2, hspace=0.5, wspace=0.3)
    rows = contributions[contributions.layer == layer]
    for feature in range(min(FEATURES_SHOWN, rows.feature.max() + 1)):
        ax = fig.add_subplot(
            inner[feature // (FEATURES_SHOWN // 2), feature % (FEATURES_SHOWN // 2)]
        )
        of_feature = rows[rows.feature == feature].sort_values("neuron")
        ax.bar(of_feature.neuron, of_feature.target, color="0.6", label="target")
        ax.plot(of_feature.neuron, of_feature.spd, ".", color="tab:red", markersize=3, label="SPD")
        ax.set_title(f"feature {feature}", fontsize=7)
        ax.tick_params(labelsize=5)
        ax.xaxis.set_major_locator(MaxNLocator(nbins=4, integer=True))  # neuron indices
        if feature == 0:
            ax.legend(fontsize=5)


def _scatter(ax, contributions: pd.DataFrame, layer: int) -> None:
    rows = contributions[contributions.layer == layer]
    ax.scatter(rows.target, rows.spd, s=2, alpha=0.5)
    bound = max(np.abs(rows[["target", "spd"]].to_numpy()).max(), 1e-6)
    ax.plot([-bound, bound], [-bound, bound], color="0.6", lw=0.8)
    correlation = np.corrcoef(rows.target, rows.spd)[0, 1]
    # least squares through the origin, as the metric neuron_contribution_slope
    slope = (rows.target @ rows.spd) / max(rows.target @ rows.target, 1e-12)
    ax.set_title(
        f"layer {layer}: all features x neurons (r = {correlation:.3f}, slope {slope:.3f})",
        fontsize=9,
    )
    ax.set_xlabel("target contribution", fontsize=8)
    ax.set_ylabel("SPD contribution", fontsize=8)
    ax.tick_params(labelsize=7)


def resid_run_page(run: ResidRunTables) -> plt.Figure:
    layers = sorted(run.neuron_contributions.layer.unique())
    n_rows = 2 * len(layers) + 1
    fig = plt.figure(figsize=(13, 3.6 * n_rows))
    grid = fig.add_gridspec(n_rows, 3, hspace=0.6, wspace=0.35)
    for i, layer in enumerate(layers):
        modules = (f"layers.{layer}.mlp_in", f"layers.{layer}.mlp_out")
        _contribution_bars(fig, grid[2 * i, 0:2], run.neuron_contributions, layer)
        _scatter(fig.add_subplot(grid[2 * i, 2]), run.neuron_contributions, layer)
        for column, module in enumerate(modules):
            ci_heatmap(fig.add_subplot(grid[2 * i + 1, column]), run.ci_probes, module)
        # This layer's metrics beside its heatmaps: one table of every layer would not fit the
        # width of a column for two or three layers.
        text_ax = fig.add_subplot(grid[2 * i + 1, 2])
        text_ax.axis("off")
        layer_metrics = run.metrics[run.metrics.layer.isin(modules)]
        text_ax.text(0, 1, metrics_text(layer_metrics), family="monospace", fontsize=7, va="top")
    loss_axes(fig.add_subplot(grid[n_rows - 1, :]), run.losses)
    fig.suptitle(
        f"SPD on {run.title}: neuron contributions of features 0-9 (target vs SPD)", fontsize=12
    )
    return fig


def write_resid_mlp_figures(runs: list[ResidRunTables], destination: str | Path) -> None:
    """Every run's page into one PDF, written atomically."""
    with atomic_path(destination) as tmp, PdfPages(tmp) as pdf:
        for run in runs:
            fig = resid_run_page(run)
            pdf.savefig(fig)
            plt.close(fig)
