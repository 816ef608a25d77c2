"""Which runs each table and figure is made of, from params.yaml: one definition shared by the
Snakemake workflow (to request the runs) and the command line (to read them).

The main job's figure and tables (tms.pdf, Table 1, robustness.pdf) are made of the experiments of
families scored by MMCS and ML2R (`Family.feature_matched`); what a run of any family computes and
writes goes through `spd.families`."""

from __future__ import annotations

from pathlib import Path

from spd.config import SWEEP_SEPARATOR, ExperimentConfig, Params
from spd.families.registry import family as family_of

RUNS_ROOT = Path("results/runs")


def run_folder(params: Params, name: str, seed: int, root: Path = RUNS_ROOT) -> Path:
    """A run's folder; a sweep point at its experiment's own value is that experiment's run."""
    return root / params.run_source(name) / f"seed{seed}"


def all_configs(params: Params) -> dict[str, ExperimentConfig]:
    """Every runnable experiment: params.yaml's own, then every sweep point."""
    return {name: params.experiment(name) for name in params.experiments} | params.sweep_points()


def experiments_of(
    params: Params, family: str | None = None, method: str | None = None
) -> list[str]:
    """params.yaml's own experiments (no sweep points) of one target family and/or method."""
    return [
        name
        for name, settings in params.experiments.items()
        if family in (None, settings.target.family)
        and method in (None, settings.decomposition.method)
    ]


def feature_matched_experiments(params: Params, method: str) -> list[str]:
    """params.yaml's own experiments of `method` whose family is scored by MMCS and ML2R."""
    return [
        name
        for name in experiments_of(params, method=method)
        if family_of(params.experiments[name].target).feature_matched
    ]


def main_experiments(params: Params) -> list[str]:
    """The main job's experiments: tms.pdf, its Table 1 (and dvc.yaml's stages); by default
    every SPD experiment scored by MMCS and ML2R."""
    return list(params.main_experiments or feature_matched_experiments(params, "spd"))


def compared_experiments(params: Params) -> list[str]:
    """SPD vs APD (scored by MMCS and ML2R): every such APD experiment, and every SPD experiment
    of a target APD decomposes."""
    apd = feature_matched_experiments(params, "apd")
    apd_targets = {params.target_source(name) for name in apd}
    spd = [
        name
        for name in experiments_of(params, method="spd")
        if params.target_source(name) in apd_targets
    ]
    return spd + apd


def base_experiment(name: str) -> str:
    return name.split(SWEEP_SEPARATOR)[0]


def sweep_points_of(params: Params, sweep: str, experiment: str) -> dict[str, float]:
    """One sweep's points on one experiment: name -> the swept setting's value, in params order."""
    values = params.sweeps[sweep].experiments.get(experiment, ())
    names = [name for name in params.sweep_points(sweep) if base_experiment(name) == experiment]
    return dict(zip(names, values, strict=True))


def feature_matched_sweep_points(params: Params) -> list[str]:
    """Every sweep point on an SPD experiment scored by MMCS and ML2R (robustness.pdf)."""
    scored = set(feature_matched_experiments(params, "spd"))
    return [name for name in params.sweep_points() if base_experiment(name) in scored]
