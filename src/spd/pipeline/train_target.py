"""Stage `spd train-target`: an experiment's target model, trained into a folder."""

from __future__ import annotations

from pathlib import Path

from spd.config import ExperimentConfig
from spd.pipeline.layout import RunFolder
from spd.pipeline.log import log


def train_target(config: ExperimentConfig, out: Path, device: str, checkpoint_every: int) -> Path:
    """Trains `config`'s target on `device` and saves it into `out`, resuming from the training
    state saved there every `checkpoint_every` steps; returns the target's path."""
    from spd.targets import registry

    folder = RunFolder(out)
    log(f"[{config.name}] training target")
    model, info = registry.train_target(
        config.target, device, log, folder.target_state, checkpoint_every
    )
    registry.save_target(model, config.target, info, folder.target)
    folder.target_state.unlink(missing_ok=True)
    log(f"[{config.name}] target saved to {folder.target} (seed used {info['seed_used']})")
    return folder.target
