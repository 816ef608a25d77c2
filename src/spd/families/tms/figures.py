"""TMS figures (paper figures 1-4 style) from the evaluation's Parquet tables, one page per run.

Each page: target columns vs the sum of subcomponents vs the live subcomponents (every column of
each, so that a subcomponent serving two features shows two arrows), on one scale with the unit
circle; CI of linear1's live subcomponents against their feature's input value; in "-id" variants
the identity layer beside the sum of its subcomponents and its live subcomponents; CI heatmaps on
the one-hot probes and CI histograms on a random batch (log y); loss curves with their total; the
metrics per layer and the run's verdict.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.layout_engine import ConstrainedLayoutEngine

from spd.evaluate.run_record import read_run_record
from spd.evaluate.table1 import TABLE1_HEADER, table1_cells
from spd.families.tms.family import CI_CURVES_FILE
from spd.figures.common import (
    ALIVE_CI,
    ci_heatmap,
    heatmap,
    live_subcomponents,
    loss_axes,
    run_title,
)
from spd.io import atomic_path, read_parquet
from spd.pipeline.layout import RunFolder

FONT = 11  # panel titles; axis labels 10 pt, ticks and legends 9-10 pt
COLUMN_FRACTION = 0.1  # a live subcomponent's columns drawn: norm >= this x its largest column's

# The metrics table: label and number format of each metric, in the order shown.
METRIC_FORMATS = {
    "mmcs": ("MMCS", "{:.4f}"),
    "ml2r": ("ML2R", "{:.4f}"),
    "alive_subcomponents": ("live subcomponents", "{:.0f}"),
    "ci_l0@0.01": ("CI-L0 (CI > 0.01)", "{:.2f}"),
    "ci_l0@0.1": ("CI-L0 (CI > 0.1)", "{:.2f}"),
    "ci_pattern_errors": ("CI-pattern errors", "{:.0f}"),
    "ci_errors_weak_diagonal": ("  weak diagonal", "{:.0f}"),
    "ci_errors_off_diagonal": ("  off diagonal", "{:.0f}"),
    "ci_errors_shared": ("  shared (merged)", "{:.0f}"),
    "alive_on_probes": ("live on probes", "{:.0f}"),
    "ci_active_fraction_min": ("active on inputs, min", "{:.2f}"),
    "ci_active_fraction_mean": ("active on inputs, mean", "{:.2f}"),
}


@dataclass(frozen=True)
class RunTables:
    """The evaluation outputs of one experiment x seed; `ci_curves` and `verdict` (run.json's) are
    None for run folders evaluated before they were written."""

    metrics: pd.DataFrame
    ci_probes: pd.DataFrame
    ci_histogram: pd.DataFrame
    weights: pd.DataFrame
    losses: pd.DataFrame
    ci_curves: pd.DataFrame | None = None
    verdict: dict | None = None

    @property
    def title(self) -> str:
        return run_title(self.metrics)


def read_run(
    metrics: Path, ci_probes: Path, ci_histogram: Path, weights: Path, losses: Path
) -> RunTables:
    """The five tables, and from the same run folder the CI curves and run.json's verdict where
    they exist."""
    paths = (metrics, ci_probes, ci_histogram, weights, losses)
    folder = RunFolder(Path(metrics).parent)
    curves_path = folder.table(CI_CURVES_FILE)
    curves = read_parquet(curves_path) if curves_path.is_file() else None
    record = read_run_record(folder.record) if folder.record.is_file() else {}
    verdict = cast(dict | None, record.get("verdict"))
    metrics_table, probes_table, histogram_table, weights_table, losses_table = (
        read_parquet(path) for path in paths
    )
    return RunTables(
        metrics_table,
        probes_table,
        histogram_table,
        weights_table,
        losses_table,
        ci_curves=curves,
        verdict=verdict,
    )


def _matrix(weights: pd.DataFrame, layer: str, kind: str, subcomponent: int) -> np.ndarray:
    """A layer's target weight or one subcomponent's piece from the weights table, (d_out, d_in)."""
    rows = weights[
        (weights.layer == layer) & (weights.kind == kind) & (weights.subcomponent == subcomponent)
    ]
    return rows.pivot(index="row", columns="col", values="value").to_numpy()


def _pieces(weights: pd.DataFrame, layer: str) -> dict[int, np.ndarray]:
    """Every subcomponent's rank-one piece of a layer, (d_out, d_in), by subcomponent index."""
    rows = weights[(weights.layer == layer) & (weights.subcomponent >= 0)]
    subcomponents = sorted(rows.subcomponent.unique())
    return {int(c): _matrix(weights, layer, "subcomponent", c) for c in subcomponents}


def drawn_columns(piece: np.ndarray, fraction: float = COLUMN_FRACTION) -> list[int]:
    """The columns (features) of a subcomponent drawn as arrows: norm >= `fraction` x the largest.
    piece: (d_hidden, n_features)."""
    norms = np.linalg.norm(piece, axis=0)
    if norms.max() <= 0:
        return []
    return [int(j) for j in np.flatnonzero(norms >= fraction * norms.max())]


def _arrow(ax: Axes, tip: np.ndarray, color) -> None:
    """An arrow from the origin to `tip`, (2,)."""
    # matplotlib takes any pair of coordinates; its stubs ask for a tuple
    ax.annotate(
        "",
        xy=tip,  # type: ignore[arg-type]
        xytext=(0, 0),
        arrowprops={"arrowstyle": "->", "color": color, "lw": 2},
    )


def _arrow_frame(ax: Axes, limit: float, title: str) -> None:
    """One scale for every arrow panel: equal limits, ticks, and the unit circle (dotted)."""
    ax.add_patch(plt.Circle((0, 0), 1.0, fill=False, color="0.6", ls=":", lw=1))
    ax.axhline(0, color="0.85", lw=0.5)
    ax.axvline(0, color="0.85", lw=0.5)
    ax.set_xlim(-limit, limit)
    ax.set_ylim(-limit, limit)
    ax.set_aspect("equal")
    ax.set_title(title, fontsize=FONT)
    ax.tick_params(labelsize=FONT - 2)


def _label_position(tip: np.ndarray, limit: float) -> np.ndarray:
    """Just beyond the arrow's tip, pulled in to stay inside the frame. tip and result: (2,)."""
    norm = np.linalg.norm(tip)
    spot = tip * (1 + 0.12 * limit / norm) if norm > 0 else tip
    return np.clip(spot, -0.88 * limit, 0.88 * limit)


def _arrow_panels(
    fig: plt.Figure, slots, W: np.ndarray, pieces: dict[int, np.ndarray], live: list[int]
) -> None:
    """W, the sum of all subcomponents, and every drawn column of each live subcomponent, as
    arrows on one scale; colour: feature, label: subcomponent (arrows shorter than 15% of the
    axis limit go unlabelled: their labels would pile up on the origin). W and each piece:
    (2, n_features), d_hidden = 2."""
    total = np.sum(list(pieces.values()), axis=0)
    colors = [plt.cm.tab10(j % 10) for j in range(W.shape[1])]
    drawn = {c: drawn_columns(pieces[c]) for c in live}
    tips = [W, total] + [pieces[c][:, drawn[c]] for c in live]
    limit = max(1.15, 1.15 * max(np.linalg.norm(t, axis=0).max() for t in tips if t.size))
    for slot, matrix, title in (
        (slots[0], W, "target W (linear1 columns)"),
        (slots[1], total, "sum of all subcomponents"),
    ):
        ax = fig.add_subplot(slot)
        for j in range(matrix.shape[1]):
            _arrow(ax, matrix[:, j], colors[j])
        _arrow_frame(ax, limit, title)
    ax = fig.add_subplot(slots[2])
    for c in live:
        for j in drawn[c]:
            tip = pieces[c][:, j]
            _arrow(ax, tip, colors[j])
            if np.linalg.norm(tip) >= 0.15 * limit:
                x, y = _label_position(tip, limit)
                ax.text(
                    x,
                    y,
                    str(c),
                    fontsize=FONT - 2,
                    ha="center",
                    va="center",
                )
    merged = sum(len(columns) > 1 for columns in drawn.values())
    note = f", {merged} with 2+ columns" if merged else ""
    title = (
        f"{len(live)} live subcomponents{note}\n(columns >= {COLUMN_FRACTION:.0%} of the largest)"
    )
    _arrow_frame(ax, limit, title)


def _weights_panels(fig: plt.Figure, slots, run: RunTables) -> None:
    W = _matrix(run.weights, "linear1", "target", -1)
    live = live_subcomponents(run.ci_probes, "linear1")
    pieces = _pieces(run.weights, "linear1")
    if W.shape[0] == 2:
        _arrow_panels(fig, slots, W, pieces, live)
        return
    total = np.sum(list(pieces.values()), axis=0)
    live_sum = np.sum([pieces[c] for c in live], axis=0) if live else np.zeros_like(W)
    for slot, matrix, title in (
        (slots[0], W, "target W (linear1)"),
        (slots[1], total, "sum of all subcomponents"),
        (slots[2], live_sum - W, f"{len(live)} live subcomponents' sum - W"),
    ):
        heatmap(fig.add_subplot(slot), matrix, title, "feature", "hidden", fontsize=FONT)


def _ci_curve_panel(ax: Axes, run: RunTables, layer: str = "linear1") -> None:
    """Each live subcomponent's CI against x_j (other features 0), for every feature j on whose
    probe it is live: a subcomponent serving two features has two curves."""
    ax.set_title(f"CI against its feature's input\n{layer}, live subcomponents", fontsize=FONT)
    ax.set_xlabel("input value x_j (other features 0)", fontsize=FONT - 1)
    ax.set_ylabel("causal importance", fontsize=FONT - 1)
    ax.tick_params(labelsize=FONT - 2)
    ax.set_xlim(0, 1)
    ax.set_ylim(-0.03, 1.05)
    if run.ci_curves is None:
        ax.text(
            0.5,
            0.5,
            "no ci_curves.parquet in the run folder\n(evaluate the run again)",
            ha="center",
            va="center",
            fontsize=FONT - 2,
            transform=ax.transAxes,
        )
        return
    curves = run.ci_curves[run.ci_curves.layer == layer]
    probes = run.ci_probes[run.ci_probes.layer == layer]
    n_features = int(probes.probe.max()) + 1
    lines = 0
    for c in live_subcomponents(run.ci_probes, layer):
        on = probes[(probes.subcomponent == c) & (probes.ci > ALIVE_CI)].probe
        for j in sorted(int(p) for p in on):
            curve = curves[(curves.subcomponent == c) & (curves.feature == j)].sort_values("x")
            ax.plot(curve.x, curve.ci, color=plt.cm.tab10(j % 10), lw=1.8, label=f"{c} on x{j}")
            lines += 1
    if 0 < lines <= 8 and n_features <= 10:
        ax.legend(
            fontsize=FONT - 2, loc="lower right", title="subcomponent", title_fontsize=FONT - 2
        )


def _identity_panels(fig: plt.Figure, slots, run: RunTables) -> None:
    """The identity, the sum of all its subcomponents, and its first two live subcomponents."""
    live = live_subcomponents(run.ci_probes, "hidden")
    pieces = _pieces(run.weights, "hidden")
    panels = [
        ("identity layer (target)", _matrix(run.weights, "hidden", "target", -1)),
        ("sum of the identity layer's\nsubcomponents", np.sum(list(pieces.values()), axis=0)),
    ]
    panels += [(f"hidden subcomponent {c}\n(live)", pieces[c]) for c in live[:2]]
    for slot, (title, matrix) in zip(slots, panels, strict=False):
        heatmap(fig.add_subplot(slot), matrix, title, "in", "out", fontsize=FONT)


def _histogram_panel(ax: Axes, run: RunTables, layers: list[str]) -> None:
    """Every layer's CI histogram as a step line on one axes."""
    for layer in layers:
        bins = run.ci_histogram[run.ci_histogram.layer == layer]
        edges = np.append(bins["bin_left"], bins["bin_right"].iloc[-1])
        ax.stairs(bins["count"], edges, lw=1.5, label=layer)
    ax.set_yscale("log")
    ax.set_title("CI histogram, random batch", fontsize=FONT)
    ax.set_xlabel("causal importance", fontsize=FONT - 1)
    ax.set_ylabel("examples x subcomponents", fontsize=FONT - 1)
    ax.tick_params(labelsize=FONT - 2)
    ax.legend(fontsize=FONT - 2, loc="upper center")


def _format(metric: str, value: float) -> str:
    label_format = METRIC_FORMATS.get(metric)
    if label_format is not None:
        return label_format[1].format(value)
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.4g}"


def metric_cells(metrics: pd.DataFrame) -> tuple[list[str], list[str], list[list[str]]]:
    """Row labels, column labels (layers) and cells of the metrics table: the metrics some layer
    has, each rounded for reading, a metric's spread over features (`<metric>_std`) beside its
    value as "value ± spread"; a layer without a metric gets '-' (never 'nan')."""
    layers = list(dict.fromkeys(metrics.layer))
    value = {(row.layer, row.metric): float(row.value) for row in metrics.itertuples()}
    present = list(dict.fromkeys(metrics.metric))
    spreads = {f"{m}_std" for m in present}
    names = [m for m in METRIC_FORMATS if m in present] + [
        m for m in present if m not in METRIC_FORMATS and m not in spreads
    ]
    names = [
        m for m in names if any(np.isfinite(value.get((layer, m), np.nan)) for layer in layers)
    ]

    def cell(layer: str, metric: str) -> str:
        if not np.isfinite(value.get((layer, metric), np.nan)):
            return "-"
        text = _format(metric, value[(layer, metric)])
        spread = value.get((layer, f"{metric}_std"), np.nan)
        return f"{text} ± {_format(metric, spread)}" if np.isfinite(spread) else text

    cells = [[cell(layer, m) for layer in layers] for m in names]
    labels = [METRIC_FORMATS.get(m, (m.replace("_", " "), ""))[0] for m in names]
    return labels, layers, cells


def verdict_line(verdict: dict | None, width: int = 64) -> tuple[str, str]:
    """The verdict as wrapped text (one line per failed criterion) and its colour: run.json's, or
    a note that there is none."""
    if verdict is None:
        return "verdict: none (the run folder has no run.json)", "0.4"
    if verdict.get("recovered") is None:
        text = textwrap.fill(f"no verdict: {verdict.get('reason') or 'none given'}", width)
        return text, "0.4"
    if verdict["recovered"]:
        return "verdict: recovered, every recovery criterion met", "tab:green"
    failures = [
        textwrap.fill(failure, width, initial_indent="- ", subsequent_indent="  ")
        for failure in verdict.get("failures") or []
    ]
    return "\n".join(["verdict: NOT recovered, criteria missed:", *failures]), "tab:red"


def _metrics_panel(ax: Axes, run: RunTables) -> None:
    """The metrics table (rows: metrics, columns: layers) and below it the verdict."""
    ax.axis("off")
    labels, layers, cells = metric_cells(run.metrics)
    height = min(0.64, 0.058 * (len(cells) + 1))
    table = ax.table(cellText=cells, rowLabels=labels, colLabels=layers, loc="upper center")
    table.auto_set_font_size(False)
    table.set_fontsize(FONT - 1)
    # each column as wide as its longest text, measured when the page is drawn
    table.auto_set_column_width(list(range(-1, len(layers))))
    for (row, _), cell in table.get_celld().items():
        cell.set_height(height / (len(cells) + 1))
        cell.set_linewidth(0.4)
        if row == 0:
            cell.set_text_props(weight="bold")
    text, color = verdict_line(run.verdict)
    ax.text(
        0.0,
        1 - height - 0.05,
        text,
        color=color,
        fontsize=FONT - 1,
        va="top",
        ha="left",
        transform=ax.transAxes,
        linespacing=1.25,
    )
    ax.set_title("metrics and verdict", fontsize=FONT)


def run_page(run: RunTables) -> plt.Figure:
    layers = list(dict.fromkeys(run.ci_probes.layer))
    has_identity = "hidden" in layers
    n_rows = 4 if has_identity else 3
    fig = plt.figure(figsize=(13, 3.3 * n_rows + 1.2), layout="constrained")
    engine = fig.get_layout_engine()
    assert isinstance(engine, ConstrainedLayoutEngine)  # layout="constrained"
    engine.set(h_pad=0.06, w_pad=0.06, hspace=0.04, wspace=0.03)
    rows = fig.add_gridspec(n_rows, 1, height_ratios=[1] * (n_rows - 1) + [1.25])
    top = rows[0].subgridspec(1, 4)
    _weights_panels(fig, [top[0, i] for i in range(3)], run)
    _ci_curve_panel(fig.add_subplot(top[0, 3]), run)
    row = 1
    if has_identity:
        identity = rows[row].subgridspec(
            1, 2 + min(2, len(live_subcomponents(run.ci_probes, "hidden")))
        )
        _identity_panels(fig, [identity[0, i] for i in range(identity.ncols)], run)
        row += 1
    ci_row = rows[row].subgridspec(1, len(layers) + 1)
    for i, layer in enumerate(layers):
        ci_heatmap(fig.add_subplot(ci_row[0, i]), run.ci_probes, layer, fontsize=FONT)
    _histogram_panel(fig.add_subplot(ci_row[0, len(layers)]), run, layers)
    bottom = rows[row + 1].subgridspec(1, 2, width_ratios=[1, 1])
    loss_axes(fig.add_subplot(bottom[0, 0]), run.losses, legend_outside=True, fontsize=FONT)
    _metrics_panel(fig.add_subplot(bottom[0, 1]), run)
    fig.suptitle(f"SPD on {run.title}", fontsize=FONT + 3, weight="bold")
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
