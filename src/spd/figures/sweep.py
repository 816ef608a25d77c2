"""A sweep's figure (paper figure 8 for resid_mlp1's beta3): one column per value of the swept
setting, one row per decomposed layer, each the CI heatmap on the one-hot probes; the verdict and
the live/expected count in each title."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.backends.backend_pdf import PdfPages

from spd.figures.common import ALIVE_CI, ci_heatmap, live_subcomponents
from spd.io import atomic_path


@dataclass(frozen=True)
class SweepPoint:
    value: float
    is_default: bool
    seed: int
    ci_probes: pd.DataFrame
    expected_alive: dict[str, int]
    failures: list[str] | None  # None: the family has no ground truth


def sweep_page(points: list[SweepPoint], experiment: str, sweep: str, setting: str) -> plt.Figure:
    layers = list(points[0].expected_alive)
    fig, axes = plt.subplots(
        len(layers), len(points), figsize=(3.4 * len(points), 3.2 * len(layers)), squeeze=False
    )
    for column, point in enumerate(points):
        for row, layer in enumerate(layers):
            live = len(live_subcomponents(point.ci_probes, layer))
            title = f"{layer}: {live} live (truth {point.expected_alive[layer]})"
            if row == 0:
                verdict = (
                    "recovered"
                    if not point.failures
                    else f"{len(point.failures)} threshold(s) missed"
                )
                default = " (params.yaml)" if point.is_default else ""
                title = f"{sweep} = {point.value:g}{default}\n{verdict}\n" + title
            ci_heatmap(axes[row, column], point.ci_probes, layer, title)
    fig.suptitle(
        f"SPD on {experiment}, sweep '{sweep}' ({setting}): CI on the one-hot probes, seed {points[0].seed}"
        f"\n(live: CI > {ALIVE_CI:g} on at least one probe; columns in diagonal order)",
        fontsize=12,
    )
    fig.tight_layout()
    return fig


def write_sweep_figures(
    points: list[SweepPoint], experiment: str, sweep: str, setting: str, destination: str | Path
) -> None:
    """One page per seed, the sweep's values left to right; written atomically."""
    with atomic_path(destination) as tmp, PdfPages(tmp) as pdf:
        for seed in sorted({point.seed for point in points}):
            of_seed = sorted((p for p in points if p.seed == seed), key=lambda p: p.value)
            fig = sweep_page(of_seed, experiment, sweep, setting)
            pdf.savefig(fig)
            plt.close(fig)
