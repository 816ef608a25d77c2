"""Reads what each multi-run figure needs from the run folders that params.yaml names (the same
selection the Snakemake workflow requests, from `spd.runsets`). A missing table is a ConfigError
naming the file, raised before anything is drawn."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from spd import runsets
from spd.config import ConfigError, Params
from spd.evaluate.comparison import comparison_row
from spd.evaluate.recovery import expected_alive, recovery_failures, recovery_summary
from spd.figures.sweep import SweepPoint
from spd.io import read_parquet
from spd.pipeline.layout import RunFolder

BENCHMARKS_ROOT = Path("benchmarks/runs/decompose")


def _table(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise ConfigError(f"run folder: {path}: file not found (run the pipeline for it first)")
    return read_parquet(path)


def _evaluated(folder: RunFolder) -> bool:
    return folder.metrics.is_file()


def _rows(metrics: pd.DataFrame) -> list[dict[str, object]]:
    return metrics[["layer", "metric", "value"]].to_dict("records")


def robustness_summary(
    params: Params, root: Path = runsets.RUNS_ROOT, partial: bool = False
) -> pd.DataFrame:
    """One row per run: every main experiment (the TMS variants) x robustness seed (sweep "seeds"),
    then every TMS sweep point x seed; with recovery_summary's columns and `done`. With
    `partial`, a run not yet evaluated gives a row with done=False and no metrics, not an error."""
    runs: list[tuple[str, str, float, int, bool]] = [
        (name, "seeds", seed, seed, False)
        for name in runsets.main_experiments(params)
        for seed in params.robustness_seeds
    ]
    for sweep in params.sweeps:
        for experiment in runsets.feature_matched_experiments(params, "spd"):
            for point, value in runsets.sweep_points_of(params, sweep, experiment).items():
                default = params.run_source(point) == experiment
                runs += [(point, sweep, value, seed, default) for seed in params.seeds]
    rows = []
    for name, sweep, x, seed, default in runs:
        folder = RunFolder(runsets.run_folder(params, name, seed, root))
        row = {
            "experiment": runsets.base_experiment(name),
            "sweep": sweep,
            "x": x,
            "seed": seed,
            "default": default,
        }
        if partial and not _evaluated(folder):
            rows.append(row | {"done": False})
            continue
        summary = recovery_summary(_rows(_table(folder.metrics)), params.experiment(name).target)
        rows.append(row | {"done": True} | summary)
    return pd.DataFrame(rows)


def sweep_points(
    params: Params, sweep: str, experiment: str, root: Path = runsets.RUNS_ROOT
) -> list[SweepPoint]:
    if sweep not in params.sweeps:
        raise ConfigError(
            f"--sweep {sweep}: params has no such sweep ({', '.join(params.sweeps) or 'none'})"
        )
    points = runsets.sweep_points_of(params, sweep, experiment)
    if not points:
        raise ConfigError(f"--experiment {experiment}: sweep '{sweep}' has no values for it")
    result = []
    for name, value in points.items():
        config = params.experiment(name)
        for seed in params.seeds:
            folder = RunFolder(runsets.run_folder(params, name, seed, root))
            metrics = _table(folder.metrics)
            result.append(
                SweepPoint(
                    value=value,
                    is_default=params.run_source(name) == experiment,
                    seed=seed,
                    ci_probes=_table(folder.ci_probes),
                    expected_alive=expected_alive(config.target),
                    failures=recovery_failures(_rows(metrics), config.target),
                )
            )
    return result


def _job_seconds(benchmarks_root: Path, name: str, seed: int, partial: bool = False) -> float:
    """The decompose job's wall time from its Snakemake benchmark; with `partial`, NaN without one
    (a run made outside Snakemake, e.g. on a GPU, has no comparable time)."""
    path = benchmarks_root / name / f"seed{seed}.tsv"
    if not path.is_file():
        if partial:
            return float("nan")
        raise ConfigError(f"{path}: file not found (the decompose job's Snakemake benchmark)")
    return float(pd.read_csv(path, sep="\t")["s"].iloc[0])


def comparison_runs(
    params: Params,
    root: Path = runsets.RUNS_ROOT,
    benchmarks_root: Path = BENCHMARKS_ROOT,
    partial: bool = False,
) -> pd.DataFrame:
    """SPD and APD on every target APD decomposes, one row per run over the robustness seeds, with
    `done`. With `partial`, a run not yet evaluated gives a row with done=False, and one without a
    Snakemake benchmark NaN times, instead of an error."""
    rows = []
    for name in runsets.compared_experiments(params):
        config = params.experiment(name)
        decomposition = config.decomposition
        for seed in params.robustness_seeds:
            folder = RunFolder(runsets.run_folder(params, name, seed, root))
            run = {
                "target": params.target_source(name),
                "experiment": name,
                "method": decomposition.method,
                "seed": seed,
            }
            if partial and not _evaluated(folder):
                rows.append(run | {"done": False})
                continue
            row = comparison_row(
                _table(folder.metrics),
                _table(folder.losses),
                _job_seconds(benchmarks_root, name, seed, partial),
                decomposition.steps,
                decomposition.steps_trained - decomposition.steps,
            )
            rows.append(run | row | {"done": True})
    return pd.DataFrame(rows)
