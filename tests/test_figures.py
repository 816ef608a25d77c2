import copy

import pandas as pd
import pytest
from conftest import TINY_TMS

from spd.config import ConfigError, parse_params
from spd.figures.collect import robustness_summary
from spd.figures.common import live_subcomponents as _alive
from spd.figures.common import not_done_note
from spd.figures.robustness import sweep_page, write_robustness_figures
from spd.pipeline.layout import METRICS_FILE, RunFolder


def test_live_subcomponents_are_ordered_by_the_probe_they_fire_on():
    # subcomponent 5 fires on probe 1, subcomponent 2 on probe 0, subcomponent 7 never above 0.1
    rows = [
        ("linear1", 0, 2, 0.9),
        ("linear1", 1, 2, 0.0),
        ("linear1", 0, 5, 0.0),
        ("linear1", 1, 5, 1.0),
        ("linear1", 0, 7, 0.05),
        ("linear1", 1, 7, 0.1),
    ]
    table = pd.DataFrame(rows, columns=["layer", "probe", "subcomponent", "ci"])
    assert _alive(table, "linear1") == [2, 5]


def test_figures_command_names_a_missing_table(tmp_path, capsys):
    from spd.cli import main

    assert main(["figures", str(tmp_path), "--out", str(tmp_path / "f.pdf")]) == 2
    assert f"{METRICS_FILE}: file not found" in capsys.readouterr().err
    assert not (tmp_path / "f.pdf").exists()


def _tms_metrics(alive: int, errors: int) -> pd.DataFrame:
    rows = [
        {"layer": layer, "metric": metric, "value": value}
        for layer in ("linear1", "linear2")
        for metric, value in (
            ("mmcs", 1.0),
            ("ml2r", 1.0),
            ("alive_subcomponents", alive),
            ("ci_pattern_errors", errors),
        )
    ]
    return pd.DataFrame(rows)


def test_robustness_partial_draws_the_evaluated_runs_and_names_the_rest(tmp_path):
    body = copy.deepcopy({k: v for k, v in TINY_TMS.items() if k != "name"})
    params = parse_params(
        {
            "seeds": [0],
            "robustness_seeds": [0, 1],
            "main_experiments": ["a"],
            "experiments": {"a": body, "a_joint": copy.deepcopy(body)},
            "sweeps": {"C": {"setting": "C", "experiments": {"a": [4, 8, 16]}}},
        }
    )
    for name, alive, errors in (("a/seed0", 5, 0), ("a@C=16/seed0", 6, 2)):
        (tmp_path / name).mkdir(parents=True)
        _tms_metrics(alive, errors).to_parquet(RunFolder(tmp_path / name).metrics)
    with pytest.raises(ConfigError, match=f"a/seed1/{METRICS_FILE}: file not found"):
        robustness_summary(params, tmp_path)

    summary = robustness_summary(params, tmp_path, partial=True)
    # the seed page holds the main experiments only; C=8 is a's own run (seed 0)
    assert list(zip(summary.sweep, summary.x, summary.done, strict=True)) == [
        ("seeds", 0, True),
        ("seeds", 1, False),
        ("C", 4, False),
        ("C", 8, True),
        ("C", 16, True),
    ]
    done = summary[summary.done]
    assert list(done.recovered) == [True, True, False]
    assert list(done.alive_surplus) == [0, 0, 2] and list(done.alive_shortfall) == [0, 0, 0]
    assert list(done.ci_errors) == [0, 0, 4]
    assert not_done_note(summary[summary.sweep == "C"], "x", "C") == "\nnot yet run: a C 4"
    assert not_done_note(done, "x", "C") == ""
    write_robustness_figures(summary, {"C": "C"}, tmp_path / "robustness.pdf")
    assert (tmp_path / "robustness.pdf").read_bytes().startswith(b"%PDF")
    # every recovery threshold has its panel, so a run missed on ML2R alone shows why
    sweep = sweep_page(summary[summary.sweep == "C"], "a", "C", "C")
    assert [ax.get_ylabel().split(" ")[0] for ax in sweep.axes] == [
        "MMCS",
        "ML2R",
        "live",
        "CI-pattern",
    ]
    # a page with nothing evaluated yet is drawn empty, with its note
    sweeps_only = summary.assign(done=summary.done & (summary.sweep != "seeds"))
    write_robustness_figures(sweeps_only, {"C": "C"}, tmp_path / "sweeps_only.pdf")
    assert (tmp_path / "sweeps_only.pdf").read_bytes().startswith(b"%PDF")
    two_seeds = pd.DataFrame(
        {
            "experiment": ["a", "a", "a"],
            "x": [4, 4, 8],
            "seed": [0, 1, 1],
            "done": [False, False, True],
        }
    )
    assert not_done_note(two_seeds, "x", "C") == "\nnot yet run: a C 4 (seed 0),4 (seed 1)"


def test_method_comparison_names_the_runs_without_a_wall_time(tmp_path):
    from spd.figures.comparison import comparison_page, untimed_note, write_comparison_figures

    nan = float("nan")
    runs = pd.DataFrame(
        {
            "target": ["t"] * 4,
            "experiment": ["t", "t", "t", "t_apd"],
            "method": ["spd", "spd", "spd", "apd"],
            "seed": [0, 3, 4, 0],
            "mmcs": [1.0, 1.0, 1.0, 0.9],
            "ml2r": [1.0, 1.0, 1.0, 0.9],
            "seconds_per_step": [0.1, nan, nan, 0.08],
            "seconds_to_convergence": [100.0, nan, nan, 50.0],
            "done": [True] * 4,
        }
    )
    assert untimed_note(runs[runs.method == "spd"], "seconds_per_step") == "untimed: seeds 3,4"
    assert untimed_note(runs[runs.seed != 4], "seconds_per_step") == "untimed: seed 3"
    assert untimed_note(runs[runs.method == "apd"], "seconds_per_step") == ""
    write_comparison_figures(runs, tmp_path / "comparison.pdf")
    assert (tmp_path / "comparison.pdf").read_bytes().startswith(b"%PDF")
    # the page's own note on runs not yet run survives the per-panel untimed notes
    waiting = runs.assign(done=[True, True, True, False])
    title = comparison_page(waiting)._suptitle.get_text()
    assert title.endswith("\nnot yet run: t_apd seeds 0")
    assert "untimed" not in title


def test_robustness_live_panel_draws_surplus_up_and_shortfall_down():
    from spd.figures.robustness import PANELS

    rows = pd.DataFrame({"alive_surplus": [2.0, 0.0], "alive_shortfall": [1.0, 0.0]})
    assert [list(values) for values in PANELS["alive"][1](rows)] == [[2.0, 0.0], [-1.0, 0.0]]


def _three_layer_resid_run():
    from spd.families.resid_mlp.figures import ResidRunTables

    modules = [f"layers.{layer}.mlp_{kind}" for layer in range(3) for kind in ("in", "out")]
    metric_names = (
        "alive_subcomponents",
        "ci_l0@0.01",
        "ci_l0@0.1",
        "ci_pattern_errors",
        "ci_errors_weak_diagonal",
        "ci_errors_off_diagonal",
        "ci_errors_shared",
        "neuron_contribution_corr",
        "neuron_contribution_slope",
        "active_on_every_probe",
        "active_probe_fraction",
        "dense_pattern_errors",
        "ci_per_probe@0.1",
        "ci_per_probe@0.9",
        "neuron_alignment",
    )
    metrics = pd.DataFrame(
        [
            {
                "experiment": "resid_mlp3",
                "seed": 0,
                "layer": module,
                "metric": name,
                "value": 1234.5678,
            }
            for module in modules
            for name in metric_names
        ]
    )
    ci_probes = pd.DataFrame(
        [
            {"layer": module, "probe": probe, "subcomponent": sub, "ci": float(probe == sub)}
            for module in modules
            for probe in range(4)
            for sub in range(4)
        ]
    )
    contributions = pd.DataFrame(
        [
            {
                "layer": layer,
                "feature": feature,
                "neuron": neuron,
                "target": 0.1 * neuron,
                "spd": 0.1,
            }
            for layer in range(3)
            for feature in range(4)
            for neuron in range(3)
        ]
    )
    losses = pd.DataFrame(
        {
            "step": [0, 10],
            "faithfulness": [1.0, 0.1],
            "stochastic_recon": [1.0, 0.1],
            "layerwise_recon": [1.0, 0.1],
            "importance_minimality": [1.0, 0.1],
        }
    )
    return ResidRunTables(metrics, ci_probes, contributions, losses)


def test_resid_mlp_page_heatmap_titles_do_not_overlap():
    # Side by side, one-line titles ("CI on one-hot probes: layers.1.mlp_in (107 live on them)", as
    # on resid_mlp2's page) ran into each other.
    import dataclasses

    import matplotlib.pyplot as plt
    import numpy as np

    from spd.families.resid_mlp.figures import resid_run_page

    run = _three_layer_resid_run()
    live = 107
    modules = sorted(run.ci_probes.layer.unique())
    probe, subcomponent = (
        grid.ravel() for grid in np.meshgrid(range(live), range(live), indexing="ij")
    )
    ci_probes = pd.concat(
        pd.DataFrame(
            {
                "layer": module,
                "probe": probe,
                "subcomponent": subcomponent,
                "ci": (probe == subcomponent).astype(float),
            }
        )
        for module in modules
    )
    fig = resid_run_page(dataclasses.replace(run, ci_probes=ci_probes))
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    titles = [ax.title for ax in fig.axes if "live on them" in ax.get_title()]
    assert len(titles) == 6
    boxes = [title.get_window_extent(renderer) for title in titles]
    for i, box in enumerate(boxes):
        assert not any(box.overlaps(other) for other in boxes[i + 1 :])
    plt.close(fig)


def test_resid_mlp_page_shows_each_layers_metrics_inside_the_page():
    # One table of all six modules ran off the page's right edge for resid_mlp2 and resid_mlp3.
    import matplotlib.pyplot as plt

    from spd.families.resid_mlp.figures import resid_run_page

    fig = resid_run_page(_three_layer_resid_run())
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    tables = [
        text for ax in fig.axes for text in ax.texts if "alive_subcomponents" in text.get_text()
    ]
    assert len(tables) == 3
    for layer, table in enumerate(tables):
        shown = {word for word in table.get_text().split() if word.startswith("layers.")}
        assert shown == {f"layers.{layer}.mlp_in", f"layers.{layer}.mlp_out"}
        box = table.get_window_extent(renderer)
        assert box.x1 <= fig.bbox.x1
        # every metric row of the layer fits above the next layer's panels
        assert not any(
            box.overlaps(ax.get_window_extent(renderer)) for ax in fig.axes if ax is not table.axes
        )
    plt.close(fig)


def _synthetic_tms_run(tmp_path, identity: bool = False):
    """A 5-2 TMS run folder with hand-made tables: subcomponent 0 serves features 0 and 1 (a merge),
    1 serves features 2 and 3 (another), 2 serves feature 4; subcomponent 3 is dead. Each live
    piece also has columns at 1% of its largest (noise, not drawn)."""
    import json

    import numpy as np

    from spd.families.tms.figures import read_run

    angles = np.linspace(0, 2 * np.pi, 5, endpoint=False)
    W = np.stack([np.cos(angles), np.sin(angles)])
    serves = {0: [0, 1], 1: [2, 3], 2: [4], 3: []}
    pieces = {}
    for c, features in serves.items():
        piece = 0.01 * W.copy() if features else np.zeros_like(W)
        piece[:, features] = W[:, features]
        pieces[c] = piece
    layers = ["linear1", "hidden", "linear2"] if identity else ["linear1", "linear2"]
    matrices = [("linear1", "target", -1, W)] + [
        ("linear1", "subcomponent", c, p) for c, p in pieces.items()
    ]
    if identity:
        hidden = {0: np.diag([1.0, 0.0]), 1: np.diag([0.0, 0.9])}
        matrices += [("hidden", "target", -1, np.eye(2))]
        matrices += [("hidden", "subcomponent", c, p) for c, p in hidden.items()]
    weights = pd.DataFrame(
        [
            {"layer": layer, "kind": kind, "subcomponent": c, "row": r, "col": k, "value": m[r, k]}
            for layer, kind, c, m in matrices
            for r in range(m.shape[0])
            for k in range(m.shape[1])
        ]
    )
    ci_probes = pd.DataFrame(
        [
            {"layer": layer, "probe": j, "subcomponent": c, "ci": float(j in serves[c])}
            for layer in layers
            for j in range(5)
            for c in serves
        ]
    )
    ci_histogram = pd.DataFrame(
        [
            {"layer": layer, "bin_left": b / 10, "bin_right": (b + 1) / 10, "count": 10 + b}
            for layer in layers
            for b in range(10)
        ]
    )
    ci_curves = pd.DataFrame(
        [
            {
                "layer": layer,
                "subcomponent": c,
                "feature": j,
                "x": x,
                "ci": min(1.0, 2 * x) * (j in serves[c]),
            }
            for layer in layers
            for c in serves
            for j in range(5)
            for x in np.linspace(0, 1, 5)
        ]
    )
    steps = np.arange(0, 1000, 100)
    losses = pd.DataFrame(
        {
            "step": steps,
            "faithfulness": 1 / (steps + 1),
            "stochastic_recon": 0.1 + 0 * steps,
            "layerwise_recon": 0.1 + 0 * steps,
            "importance_minimality": 1.0 + 0 * steps,
            "total": 0.3 + 0 * steps,
        }
    )
    metric_rows = [("linear1", "mmcs", 0.98765), ("linear1", "mmcs_std", 9.173e-5)]
    metric_rows += [("linear1", "ml2r", 0.61234), ("linear1", "ml2r_std", 0.0123)]
    metric_rows += [(layer, "alive_subcomponents", 3.0) for layer in layers]
    metric_rows += [(layer, "ci_pattern_errors", 2.0) for layer in layers]
    metrics = pd.DataFrame(
        [
            {"experiment": "tms_5-2", "seed": 0, "layer": layer, "metric": metric, "value": value}
            for layer, metric, value in metric_rows
        ]
    )
    tables = {
        "metrics": metrics,
        "ci_probes": ci_probes,
        "ci_histogram": ci_histogram,
        "weights": weights,
        "losses": losses,
        "ci_curves": ci_curves,
    }
    for name, table in tables.items():
        table.to_parquet(tmp_path / f"{name}.parquet")
    verdict = {
        "recovered": False,
        "failures": ["MMCS 0.9877 < 0.999", "linear1: 3 alive subcomponents, expected 5"],
        "reason": None,
    }
    RunFolder(tmp_path).record.write_text(json.dumps({"verdict": verdict}))
    names = ("metrics", "ci_probes", "ci_histogram", "weights", "losses")
    return read_run(*(tmp_path / f"{name}.parquet" for name in names))


def _axes_titled(fig, start: str):
    return [ax for ax in fig.axes if ax.get_title().startswith(start)]


def _page(run):
    from spd.families.tms.figures import run_page

    fig = run_page(run)
    fig.canvas.draw()
    return fig, fig.canvas.get_renderer()


def test_tms_live_panel_draws_every_column_of_a_merged_subcomponent(tmp_path):
    import matplotlib.pyplot as plt

    fig, renderer = _page(_synthetic_tms_run(tmp_path))
    [live] = [
        ax
        for ax in fig.axes
        if "live subcomponents" in ax.get_title() and "CI" not in ax.get_title()
    ]
    arrows = [text for text in live.texts if text.get_text() == "" and text.arrow_patch is not None]
    assert len(arrows) == 5  # 0 -> features 0, 1; 1 -> features 2, 3; 2 -> feature 4
    labels = sorted(text.get_text() for text in live.texts if text.get_text())
    assert labels == ["0", "0", "1", "1", "2"]
    # the labels stay inside the frame
    frame = live.get_window_extent(renderer)
    for text in live.texts:
        if text.get_text():
            box = text.get_window_extent(renderer)
            assert (
                frame.x0 <= box.x0
                and box.x1 <= frame.x1
                and frame.y0 <= box.y0
                and box.y1 <= frame.y1
            )
    plt.close(fig)


def test_tms_arrow_panels_share_one_scale_with_the_unit_circle(tmp_path):
    import matplotlib.pyplot as plt
    from matplotlib.patches import Circle

    fig, _ = _page(_synthetic_tms_run(tmp_path))
    panels = (
        _axes_titled(fig, "target W")
        + _axes_titled(fig, "sum of all")
        + [
            ax
            for ax in fig.axes
            if "live subcomponents" in ax.get_title() and "CI" not in ax.get_title()
        ]
    )
    assert len(panels) == 3
    assert len({ax.get_xlim() for ax in panels} | {ax.get_ylim() for ax in panels}) == 1
    for ax in panels:
        assert any(isinstance(patch, Circle) and patch.radius == 1.0 for patch in ax.patches)
        assert len(ax.get_xticks()) > 0
    plt.close(fig)


def test_tms_identity_row_shows_the_sum_of_its_subcomponents(tmp_path):
    import matplotlib.pyplot as plt
    import numpy as np

    fig, _ = _page(_synthetic_tms_run(tmp_path, identity=True))
    [ax] = _axes_titled(fig, "sum of the identity layer")
    assert np.allclose(ax.images[0].get_array(), np.diag([1.0, 0.9]))
    plt.close(fig)


def test_tms_loss_panel_draws_the_total_with_its_legend_outside(tmp_path):
    import matplotlib.pyplot as plt

    fig, renderer = _page(_synthetic_tms_run(tmp_path))
    [ax] = _axes_titled(fig, "losses")
    assert any(line.get_label().startswith("total") for line in ax.get_lines())
    legend = ax.get_legend().get_window_extent(renderer)
    assert not legend.overlaps(ax.get_window_extent(renderer))
    assert legend.x1 <= fig.bbox.x1
    plt.close(fig)


def test_tms_metrics_table_has_no_nan_and_shows_the_verdict(tmp_path):
    import matplotlib.pyplot as plt

    fig, renderer = _page(_synthetic_tms_run(tmp_path))
    cells = [cell for ax in fig.axes for table in ax.tables for cell in table.get_celld().values()]
    texts = [text.get_text() for text in fig.findobj(plt.Text) + [c.get_text() for c in cells]]
    assert not any("nan" in text.lower() for text in texts)
    # rounded, with the spread over features beside the value; linear2 has no MMCS: a dash
    assert "0.9877 ± 0.0001" in texts and "0.6123 ± 0.0123" in texts
    assert not any("std" in text for text in texts)  # the spreads are not rows of their own
    for cell in cells:  # every cell's text inside its frame
        text, frame = cell.get_text().get_window_extent(renderer), cell.get_window_extent(renderer)
        assert frame.x0 - 1 <= text.x0 and text.x1 <= frame.x1 + 1, cell.get_text().get_text()
    assert any(
        text.startswith("verdict: NOT recovered") and "- MMCS 0.9877 < 0.999\n" in text
        for text in texts
    )
    plt.close(fig)


def test_tms_page_has_the_ci_curve_panel(tmp_path):
    import matplotlib.pyplot as plt

    fig, _ = _page(_synthetic_tms_run(tmp_path))
    [ax] = _axes_titled(fig, "CI against its feature's input")
    assert len(ax.get_lines()) == 5  # merged subcomponents have a curve on each feature
    plt.close(fig)


def test_tms_page_text_is_readable_and_leaves_no_blank_band(tmp_path):
    import matplotlib.pyplot as plt

    for identity in (False, True):
        fig, renderer = _page(_synthetic_tms_run(tmp_path, identity))
        sizes = [
            text.get_fontsize()
            for text in fig.findobj(plt.Text)
            if text.get_text().strip() and text.get_visible()
        ]
        assert min(sizes) >= 9
        # every axes holds something (no empty grid slot) and the title sits on the content
        assert all(ax.has_data() or ax.tables or ax.texts for ax in fig.axes)
        top = max(ax.get_tightbbox(renderer).y1 for ax in fig.axes)
        title = fig._suptitle.get_window_extent(renderer)
        assert title.y0 - top < 0.3 * fig.dpi
        plt.close(fig)
