"""Which runs each table and figure is made of, from params.yaml: one definition shared by the
Snakemake workflow (to request the runs) and the command line (to read them).

The paper's figures and tables are made of named families' experiments (tms.pdf, Table 1 and
robustness.pdf of TMS runs), so the selections below name a family; what a run of any family
computes and writes goes through `spd.families` instead."""

from __future__ import annotations

from pathlib import Path

from spd.config import SWEEP_SEPARATOR, ExperimentConfig, Params

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


def main_experiments(params: Params) -> list[str]:
    """The main job's experiments: tms.pdf, its Table 1 (and dvc.yaml's stages)."""
    return list(params.main_experiments or experiments_of(params, family="tms", method="spd"))


def compared_experiments(params: Params) -> list[str]:
    """SPD vs APD on TMS (scored by MMCS and ML2R): every TMS APD experiment, and every SPD
    experiment of a target APD decomposes."""
    apd = experiments_of(params, family="tms", method="apd")
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


def tms_sweep_points(params: Params) -> list[str]:
    """Every sweep point on a TMS SPD experiment (robustness.pdf)."""
    tms = set(experiments_of(params, family="tms", method="spd"))
    return [name for name in params.sweep_points() if base_experiment(name) in tms]
