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
    ax: Axes, matrix: np.ndarray, title: str, xlabel: str, ylabel: str, cmap: str = "RdBu"
) -> None:
    bound = max(np.abs(matrix).max(), 1e-6)
    vmin, vmax = (-bound, bound) if cmap == "RdBu" else (0, 1)
    image = ax.imshow(
        matrix, cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto", interpolation="nearest"
    )
    ax.set_title(title, fontsize=9)
    ax.set_xlabel(xlabel, fontsize=8)
    ax.set_ylabel(ylabel, fontsize=8)
    ax.tick_params(labelsize=7)
    if max(matrix.shape) <= 20:
        ax.set_xticks(range(matrix.shape[1]))
        ax.set_yticks(range(matrix.shape[0]))
    plt.colorbar(image, ax=ax, fraction=0.046, pad=0.04)


def ci_heatmap(ax: Axes, ci_probes: pd.DataFrame, layer: str, title: str | None = None) -> None:
    """CI of a layer's live subcomponents (columns, in diagonal order) on the one-hot probes."""
    live = live_subcomponents(ci_probes, layer)
    ci = ci_probes[ci_probes.layer == layer].pivot(index="probe", columns="subcomponent", values="ci")
    matrix = ci[live].to_numpy() if live else np.zeros((len(ci), 1))
    title = title or f"CI on one-hot probes\n{layer}: {len(live)} live on them"
    heatmap(ax, matrix, title, "live subcomponent", "probe (feature)", cmap="viridis")
    if live and len(live) <= 20:
        ax.set_xticks(range(len(live)), [str(c) for c in live])


def loss_axes(ax: Axes, losses: pd.DataFrame) -> None:
    for column in LOSS_COLUMNS:
        ax.plot(losses["step"], losses[column], label=column.replace("_", " "))
    ax.set_yscale("log")
    ax.set_xlabel("step", fontsize=8)
    ax.set_title("losses", fontsize=9)
    ax.legend(fontsize=7)
    ax.tick_params(labelsize=7)


def metrics_text(metrics: pd.DataFrame) -> str:
    rows = metrics.pivot_table(index="metric", columns="layer", values="value")
    return rows.round(4).to_string()
