"""method_comparison.pdf: SPD vs APD on the same targets, one row of panels per target: cost per
step, wall time to convergence, MMCS and ML2R per seed (ML2R < 1 is APD's shrinkage)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.backends.backend_pdf import PdfPages

from spd.figures.common import not_done_note
from spd.io import atomic_path

PANELS = (
    ("seconds_per_step", "wall time per step (s)"),
    ("seconds_to_convergence", "wall time to convergence (s)"),
    ("mmcs", "MMCS (linear1)"),
    ("ml2r", "ML2R (linear1)"),
)
COLORS = {"spd": "tab:blue", "apd": "tab:orange"}
TIMES = ("seconds_per_step", "seconds_to_convergence")


def untimed_note(runs: pd.DataFrame, column: str) -> str:
    """'' when every run has a time in `column`, else which seeds have none, e.g. 'untimed: seeds
    3,4' (a run made elsewhere, on a GPU say, and copied in has no Snakemake benchmark file)."""
    seeds = sorted(runs.seed[runs[column].isna()])
    if not seeds:
        return ""
    return f"untimed: seed{'s' if len(seeds) > 1 else ''} {','.join(str(s) for s in seeds)}"


def comparison_page(runs: pd.DataFrame) -> plt.Figure:
    """`runs`: one row per run (evaluate.comparison.comparison_row) plus its `target` and `done`;
    runs not done are named in the title."""
    note = not_done_note(runs, "seed", "seeds")
    runs = runs[runs.done]
    targets = list(dict.fromkeys(runs.target))
    fig, axes = plt.subplots(
        len(targets), len(PANELS), figsize=(15, 3.8 * len(targets)), squeeze=False
    )
    for row, target in enumerate(targets):
        of_target = runs[runs.target == target]
        methods = list(dict.fromkeys(of_target.method))
        for ax, (column, label) in zip(axes[row], PANELS, strict=True):
            for i, method in enumerate(methods):
                of_method = of_target[of_target.method == method]
                values = of_method[column]
                ax.bar(i, values.mean(), color=COLORS.get(method, "0.6"), alpha=0.35)
                ax.plot(
                    [i] * len(values), values, "o", color=COLORS.get(method, "0.3"), markersize=5
                )
                if column in TIMES:
                    ax.annotate(
                        untimed_note(of_method, column),
                        (i, 0),
                        xytext=(0, 3),
                        textcoords="offset points",
                        ha="center",
                        fontsize=7,
                    )
            ax.set_xticks(range(len(methods)), [m.upper() for m in methods])
            ax.set_title(f"{target}: {label}", fontsize=9)
            ax.tick_params(labelsize=7)
            if column in ("mmcs", "ml2r"):
                ax.axhline(1.0, color="0.5", ls="--", lw=0.8)
                low = min(0.8, of_target[column].min() - 0.02)
                ax.set_ylim(low, max(1.05, of_target[column].max() + 0.02))
    seeds = ",".join(str(s) for s in sorted(set(runs.seed)))
    fig.suptitle(
        f"SPD vs APD on the same targets (bars: mean; dots: seeds {seeds}). Wall time: the decompose "
        f"job's, per step; convergence: total loss within 10% of its final value{note}",
        fontsize=10,
    )
    fig.tight_layout()
    return fig


def write_comparison_figures(runs: pd.DataFrame, destination: str | Path) -> None:
    with atomic_path(destination) as tmp, PdfPages(tmp) as pdf:
        fig = comparison_page(runs)
        pdf.savefig(fig)
        plt.close(fig)
