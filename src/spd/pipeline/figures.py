"""Stages `spd figures | sweep-figures | robustness | compare`: PDF figures of evaluated runs,
of run folders given (`figures`) or of the runs params.yaml names (the others)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from spd.config import ConfigError, Params
from spd.io import read_parquet
from spd.pipeline.layout import METRICS_FILE, run_tables
from spd.pipeline.log import log


def figures(runs: list[Path], out: Path, table1_path: Path | None) -> None:
    """One page per run folder of `runs` into the PDF `out`, every run of one toy family, whose
    page it gets (the default CI pages for a family without one); with `table1_path`, that
    Table 1 on the first page."""
    from spd.evaluate.table1 import check_single_config, read_table1
    from spd.families.base import DEFAULT_FIGURE_TABLES
    from spd.families.registry import family

    table = None if table1_path is None else read_table1(table1_path)
    tables = {paths[0]: read_parquet(paths[0]) for paths in run_tables(runs, [METRICS_FILE])}
    for path, metrics_table in tables.items():
        if "family" not in metrics_table.columns:
            raise ConfigError(
                f"{path}: no 'family' column; run `spd evaluate` on its run folder again"
            )
    metrics = pd.concat(tables.values())
    check_single_config(metrics)
    families = sorted(set(metrics["family"]))
    if len(families) != 1:
        raise ConfigError(
            f"figures: runs of different target families ({', '.join(families)}); draw them apart"
        )
    runs_family = family(families[0])
    if not runs_family.write_figures(run_tables(runs, runs_family.figure_tables), out, table):
        from spd.figures.ci_pages import read_ci_run, write_ci_figures

        write_ci_figures(
            [read_ci_run(*paths) for paths in run_tables(runs, DEFAULT_FIGURE_TABLES)], out
        )
    log(f"figures saved to {out}")


def sweep_figures(params: Params, sweep: str, experiment: str, runs_root: Path, out: Path) -> None:
    """The CI heatmaps of one sweep of `params` on `experiment`, one column per value, into `out`."""
    from spd.figures import collect
    from spd.figures.sweep import write_sweep_figures

    points = collect.sweep_points(params, sweep, experiment, runs_root)
    write_sweep_figures(points, experiment, sweep, params.sweeps[sweep].setting, out)
    log(f"figures saved to {out}")


def robustness(params: Params, runs_root: Path, out: Path, partial: bool) -> None:
    """SPD's recovery on TMS across seeds and every sweep of `params`, into `out`; with
    `partial`, of the runs evaluated so far, naming the others."""
    from spd.figures import collect
    from spd.figures.robustness import write_robustness_figures

    summary = _some_done(collect.robustness_summary(params, runs_root, partial))
    log(summary.to_string(index=False))
    settings = {name: sweep.setting for name, sweep in params.sweeps.items()}
    write_robustness_figures(summary, settings, out)
    log(f"figures saved to {out}")


def compare(
    params: Params, runs_root: Path, benchmarks_root: Path, out: Path, partial: bool
) -> None:
    """SPD against APD (cost, MMCS, ML2R per seed) on every target APD decomposes, into `out`,
    with the decompose jobs' times from their Snakemake benchmarks under `benchmarks_root`; with
    `partial`, of the runs evaluated so far, naming the others."""
    from spd.figures import collect
    from spd.figures.comparison import write_comparison_figures

    runs = _some_done(collect.comparison_runs(params, runs_root, benchmarks_root, partial))
    log(runs.to_string(index=False))
    write_comparison_figures(runs, out)
    log(f"figures saved to {out}")


def _some_done(runs: pd.DataFrame) -> pd.DataFrame:
    if runs.empty or not runs["done"].any():
        raise ConfigError("no run that this figure draws is evaluated yet (or params names none)")
    return runs
