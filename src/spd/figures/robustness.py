"""robustness.pdf: SPD's recovery across seeds for the TMS variants (the main experiments), and
across grids of one decomposition setting (beta3, C). Input: one row per run from `evaluate.recovery.recovery_summary`,
with `experiment`, `sweep` ("seeds" for the seed page), `x` (the seed or the setting's value),
and `default` (the experiment's own value)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_pdf import PdfPages

from spd.evaluate.recovery import ML2R_RANGE, MMCS_MIN
from spd.figures.common import not_done_note
from spd.io import atomic_path

# panel -> its y label and the values it draws per run (the live panel draws two: a layer's surplus
# up, another's shortfall down, so that they cannot cancel)
PANELS: dict[str, tuple[str, Callable[[pd.DataFrame], list[pd.Series]]]] = {
    "mmcs": (f"MMCS (linear1)\n(shaded: the criterion's >= {MMCS_MIN})", lambda rows: [rows.mmcs]),
    "ml2r": (
        "ML2R (linear1)\n(shaded: the criterion's {:g} to {:g})".format(*ML2R_RANGE),
        lambda rows: [rows.ml2r],
    ),
    "alive": (
        "live subcomponents vs ground truth\n(above 0: surplus, below: shortfall;\nsummed over layers)",
        lambda rows: [rows.alive_surplus, -rows.alive_shortfall],
    ),
    "ci_errors": ("CI-pattern errors\n(summed over layers)", lambda rows: [rows.ci_errors]),
}
# panel -> the values the recovery criteria accept, shaded; the other panels' ground truth is 0, a line
ACCEPTED: dict[str, tuple[float, float]] = {"mmcs": (MMCS_MIN, 1.0), "ml2r": ML2R_RANGE}
RECOVERED = {True: ("tab:green", "o", "every criterion met"), False: ("tab:red", "x", "missed")}


def _points(ax: Axes, rows: pd.DataFrame, values: list[pd.Series], x: pd.Series) -> None:
    for recovered, (color, marker, label) in RECOVERED.items():
        chosen = rows.recovered == recovered
        for i, y in enumerate(values):
            ax.plot(
                x[chosen],
                y[chosen],
                marker,
                color=color,
                label=None if i else label,
                markersize=6,
                linestyle="none",
            )


def _accepted(ax: Axes, panel: str) -> None:
    if panel in ACCEPTED:
        ax.axhspan(*ACCEPTED[panel], color="tab:green", alpha=0.12, lw=0)
    else:
        ax.axhline(0, color="0.7", lw=0.8)


def seeds_page(runs: pd.DataFrame) -> plt.Figure:
    experiments = list(dict.fromkeys(runs.experiment))
    rows = runs[runs.done]
    fig, axes = plt.subplots(1, len(PANELS), figsize=(18, 4.5))
    position = rows.experiment.map({name: i for i, name in enumerate(experiments)}).astype(float)
    jitter = rows.groupby("experiment").cumcount() * 0.08 - 0.16
    for ax, (panel, (label, values_of)) in zip(axes, PANELS.items(), strict=True):
        _points(ax, rows, values_of(rows), position + jitter)
        ax.set_xticks(range(len(experiments)), experiments, fontsize=8)
        ax.set_ylabel(label, fontsize=8)
        ax.tick_params(labelsize=7)
        _accepted(ax, panel)
    axes[0].legend(fontsize=7)
    seeds = ",".join(str(s) for s in sorted(set(runs.x.astype(int))))
    note = not_done_note(runs, "seed", "seeds")
    fig.suptitle(f"SPD on the TMS variants: seeds {seeds} (one point per seed){note}", fontsize=12)
    fig.tight_layout()
    return fig


def sweep_page(runs: pd.DataFrame, experiment: str, sweep: str, setting: str) -> plt.Figure:
    rows = runs[runs.done]
    fig, axes = plt.subplots(1, len(PANELS), figsize=(18, 4.5))
    grid = sorted(set(runs.x))  # every grid value, run or not: the axis spans the whole grid
    for ax, (panel, (label, values_of)) in zip(axes, PANELS.items(), strict=True):
        _points(ax, rows, values_of(rows), rows.x)
        ax.set_xscale("log")
        ax.set_xticks(grid, [f"{value:g}" for value in grid], minor=False)
        ax.set_xticks([], minor=True)
        ax.set_xlim(min(grid) / 1.5, max(grid) * 1.5)
        for value in rows.x[rows.default]:
            ax.axvline(value, color="0.5", ls="--", lw=0.8)
        ax.set_xlabel(f"{setting} (dashed: params.yaml's value)", fontsize=8)
        ax.set_ylabel(label, fontsize=8)
        ax.tick_params(labelsize=7)
        _accepted(ax, panel)
    axes[0].legend(fontsize=7)
    seeds = ",".join(str(s) for s in sorted(set(runs.seed)))
    note = not_done_note(runs, "x", sweep)
    fig.suptitle(
        f"SPD on {experiment}: sweep '{sweep}' over {setting} (seed {seeds}){note}", fontsize=12
    )
    fig.tight_layout()
    return fig


def write_robustness_figures(
    summary: pd.DataFrame, settings: dict[str, str], destination: str | Path
) -> None:
    """The seed page, then one page per (experiment, sweep); `settings` maps sweep -> setting."""
    with atomic_path(destination) as tmp, PdfPages(tmp) as pdf:
        pages = [seeds_page(summary[summary.sweep == "seeds"])]
        sweeps = summary[summary.sweep != "seeds"]
        for (experiment, sweep), rows in sweeps.groupby(["experiment", "sweep"], sort=False):
            pages.append(sweep_page(rows, experiment, sweep, settings[sweep]))
        for fig in pages:
            pdf.savefig(fig)
            plt.close(fig)
