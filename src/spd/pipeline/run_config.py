"""A run folder's stored config (config.yaml): the experiment's config as `spd decompose` ran it,
--seed and --steps overrides applied. Evaluation reads the run's config from its folder instead
of from params.yaml; an experiment named as well must be the run's."""

from __future__ import annotations

from pathlib import Path

import yaml

from spd.checks import check_decomposition, check_target
from spd.config import ConfigError, ExperimentConfig, load_experiment_config
from spd.io import atomic_write
from spd.pipeline.layout import RunFolder


def write_run_config(run: RunFolder, config: ExperimentConfig) -> Path:
    """Stores `config` in the run folder, as a single-experiment YAML file (`--config` reads it)."""
    raw = config.model_dump(mode="json")
    text = yaml.safe_dump({"name": raw.pop("name"), **raw}, sort_keys=False)
    atomic_write(run.config, lambda tmp: tmp.write_text(text))
    return run.config


def run_config(run: RunFolder, experiment: ExperimentConfig | None) -> ExperimentConfig:
    """The config the run in `run` was decomposed with. Given `experiment`, the run must be one
    of its runs (its name, target and decomposition settings, up to the overridable seed and
    steps), and the experiment's evaluation settings apply: a change to them reevaluates a run
    without decomposing it again. A run folder from before runs stored their config is taken to
    be `experiment`'s run, as evaluation then checks against its checkpoints."""
    path = run.config
    if not path.is_file():
        if experiment is None:
            raise ConfigError(
                f"{path}: not found (the run's config, written by `spd decompose`): decompose "
                "the run again, or name its experiment with --experiment or --config"
            )
        return experiment
    stored = load_experiment_config(path)
    if experiment is None:
        return stored
    if stored.name != experiment.name:
        raise ConfigError(
            f"{path}: a run of experiment '{stored.name}', not of '{experiment.name}'"
        )
    check_target(path, stored.target, experiment)
    check_decomposition(path, stored.decomposition, experiment)
    return stored.model_copy(update={"evaluation": experiment.evaluation})
