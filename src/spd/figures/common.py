"""Figure pieces shared by the toy families' pages: heatmaps, live-subcomponent order, loss curves."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes

ALIVE_CI = 0.1
LOSS_COLUMNS = ("faithfulness", "stochastic_recon", "layerwise_recon", "importance_minimality")


def run_title(metrics: pd.DataFrame) -> str:
    """'<experiment>, seed <seed>' of one run's metrics table."""
    return f"{metrics['experiment'].iloc[0]}, seed {metrics['seed'].iloc[0]}"


def live_subcomponents(ci_probes: pd.DataFrame, layer: str) -> list[int]:
    """Subcomponents live on the probes, ordered by the probe on which each fires most."""
    ci = ci_probes[ci_probes.layer == layer].pivot(
        index="probe", columns="subcomponent", values="ci"
    )
    live = [c for c in ci.columns if ci[c].max() > ALIVE_CI]
    return sorted(live, key=lambda c: (int(ci[c].to_numpy().argmax()), c))


def not_done_note(runs: pd.DataFrame, column: str, label: str) -> str:
    """'' when every run is done (column `done`), else a line naming the others by experiment, e.g.
    '\nnot yet run: tms_40-10 seeds 2,3,4' (`label` 'seeds', `column` holding the seed); where
    the runs span several seeds and `column` is not the seed, each value names its seed."""
    waiting = runs[~runs.done]
    if waiting.empty:
        return ""
    with_seed = column != "seed" and "seed" in runs and runs.seed.nunique() > 1

    def name(row: pd.Series) -> str:
        return f"{row[column]:g}" + (f" (seed {row.seed})" if with_seed else "")

    parts = [
        f"{experiment} {label} {','.join(name(row) for _, row in rows.iterrows())}"
        for experiment, rows in waiting.groupby("experiment", sort=False)
    ]
    return "\nnot yet run: " + "; ".join(parts)


def heatmap(
    ax: Axes,
    matrix: np.ndarray,
    title: str,
    xlabel: str,
    ylabel: str,
    cmap: str = "RdBu",
    fontsize: float = 9,
) -> None:
    """`matrix`: (rows, columns), drawn as it is (row 0 at the top). `fontsize` is the title's;
    axis labels are 1 pt and tick labels 2 pt smaller."""
    bound = max(np.abs(matrix).max(), 1e-6)
    vmin, vmax = (-bound, bound) if cmap == "RdBu" else (0, 1)
    image = ax.imshow(
        matrix, cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto", interpolation="nearest"
    )
    ax.set_title(title, fontsize=fontsize)
    ax.set_xlabel(xlabel, fontsize=fontsize - 1)
    ax.set_ylabel(ylabel, fontsize=fontsize - 1)
    ax.tick_params(labelsize=fontsize - 2)
    if max(matrix.shape) <= 20:
        ax.set_xticks(range(matrix.shape[1]))
        ax.set_yticks(range(matrix.shape[0]))
    colorbar = plt.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    colorbar.ax.tick_params(labelsize=fontsize - 2)


def ci_heatmap(
    ax: Axes, ci_probes: pd.DataFrame, layer: str, title: str | None = None, fontsize: float = 9
) -> None:
    """CI of a layer's live subcomponents (columns, in diagonal order) on the one-hot probes."""
    live = live_subcomponents(ci_probes, layer)
    ci = ci_probes[ci_probes.layer == layer].pivot(
        index="probe", columns="subcomponent", values="ci"
    )
    matrix = ci[live].to_numpy() if live else np.zeros((len(ci), 1))
    title = title or f"CI on one-hot probes\n{layer}: {len(live)} live on them"
    heatmap(ax, matrix, title, "live subcomponent", "probe (feature)", "viridis", fontsize)
    if live and len(live) <= 20:
        ax.set_xticks(range(len(live)), [str(c) for c in live])


def loss_axes(
    ax: Axes, losses: pd.DataFrame, legend_outside: bool = False, fontsize: float = 9
) -> None:
    """Every loss term and, where the table has it, the weighted total (black); the legend inside
    the axes, or to their right with `legend_outside`."""
    if "total" in losses:
        ax.plot(losses["step"], losses["total"], color="black", lw=2, label="total (weighted)")
    for column in LOSS_COLUMNS:
        ax.plot(losses["step"], losses[column], label=column.replace("_", " "))
    ax.set_yscale("log")
    ax.set_xlabel("step", fontsize=fontsize - 1)
    ax.set_title("losses", fontsize=fontsize)
    if legend_outside:
        ax.legend(
            fontsize=fontsize - 1, loc="upper left", bbox_to_anchor=(1.02, 1), borderaxespad=0
        )
    else:
        ax.legend(fontsize=fontsize - 2)
    ax.tick_params(labelsize=fontsize - 2)


def metrics_text(metrics: pd.DataFrame) -> str:
    rows = metrics.pivot_table(index="metric", columns="layer", values="value")
    return rows.round(4).to_string()
