"""Decomposition checkpoints: the trained components and gates with the config that made them, and
the in-progress training state from which a killed run resumes."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from spd.config import SPDConfig, config_hash
from spd.decomp.component_model import ComponentModel
from spd.io import CheckpointError, load_checkpoint, save_checkpoint
from spd.targets.base import Target

DECOMPOSITION_KIND = "decomposition"
TRAINING_STATE_KIND = "decomposition_training_state"


def save_decomposition(model: ComponentModel, config: SPDConfig, path: str | Path) -> None:
    payload = {
        "kind": DECOMPOSITION_KIND,
        "config": config.model_dump(mode="json"),
        "config_hash": config_hash(config),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    }
    save_checkpoint(payload, path)


def load_decomposition(path: str | Path, target: Target) -> tuple[ComponentModel, SPDConfig]:
    payload = load_checkpoint(path, DECOMPOSITION_KIND)
    config = SPDConfig.model_validate(payload["config"])
    target = target.restricted_to(config.modules)
    device = next(target.model.parameters()).device
    generator = torch.Generator(device=device)
    model = ComponentModel(target, config.C, config.d_gate, config.fused_gates, generator)
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as error:
        first_line = str(error).strip().splitlines()[0]
        raise CheckpointError(f"{path}: does not fit the target ({first_line})") from None
    return model, config


def target_fingerprint(target: Target) -> str:
    """A hash of the target's weights: a training state is only resumed on the same target."""
    digest = hashlib.sha256()
    for name, tensor in sorted(target.model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


@dataclass
class TrainingState:
    """Everything a run needs to continue bit-identically from `next_step`."""

    next_step: int
    model: dict[str, torch.Tensor]
    optimizer: dict[str, Any]
    generator: torch.Tensor
    global_rng: torch.Tensor
    history: list[dict[str, float]]


def save_training_state(
    state: TrainingState, config: SPDConfig, target: Target, path: str | Path
) -> None:
    payload = {
        "kind": TRAINING_STATE_KIND,
        "config_hash": config_hash(config),
        "target": target_fingerprint(target),
        "next_step": state.next_step,
        "model": {k: v.detach().cpu().clone() for k, v in state.model.items()},
        "optimizer": state.optimizer,
        "generator": state.generator,
        "global_rng": state.global_rng,
        "history": state.history,
    }
    save_checkpoint(payload, path)


def load_training_state(
    path: str | Path, config: SPDConfig, target: Target
) -> TrainingState | None:
    """The saved state, or None when it was made with another config or target (then ignored)."""
    payload = load_checkpoint(path, TRAINING_STATE_KIND)
    if payload["config_hash"] != config_hash(config) or payload["target"] != target_fingerprint(target):
        return None
    return TrainingState(
        next_step=payload["next_step"],
        model=payload["model"],
        optimizer=payload["optimizer"],
        generator=payload["generator"],
        global_rng=payload["global_rng"],
        history=payload["history"],
    )
