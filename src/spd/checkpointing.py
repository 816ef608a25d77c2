"""Checkpoints, one save/load path for each kind of file: a trained model (target.pt,
decomposition.pt: its config, how it was made, its weights) and the periodic training state.

A state holds everything a training loop needs to continue bit-identically: parameters, optimiser
state, the data/mask generator's and the global RNG's states, the next step, and loop-specific
extras (loss history, the elapsed time, the seed being tried). It is tagged with an identity string (config hash,
target fingerprint): a state made for anything else is ignored, never resumed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import torch
from pydantic import BaseModel, TypeAdapter, ValidationError
from torch import nn

from spd.config import config_hash
from spd.io import CheckpointError, load_checkpoint, save_checkpoint

if TYPE_CHECKING:
    from spd.targets.base import Target

TRAINING_STATE_KIND = "training_state"
ConfigT = TypeVar("ConfigT")
ModelT = TypeVar("ModelT", bound=nn.Module)


def save_model(
    kind: str, model: nn.Module, config: BaseModel, path: str | Path, **fields: object
) -> None:
    """A trained model's file: its kind, the config that describes it, `fields` (how it was
    made), and its weights."""
    payload = {
        "kind": kind,
        "config": config.model_dump(mode="json"),
        **fields,
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    }
    save_checkpoint(payload, path)


def load_model(
    path: str | Path,
    kind: str,
    config_type: TypeAdapter[ConfigT],
    build: Callable[[ConfigT], ModelT],
    fits: str,
    fields: Mapping[str, type] | None = None,
    optional: Mapping[str, type] | None = None,
) -> tuple[ModelT, ConfigT, dict[str, Any]]:
    """The model a `save_model` file holds, `build(config)` with the saved weights loaded, its
    config, and the file's whole payload. A config that is not valid or too large to build, or
    weights that do not fit the model (`fits` says what they must fit), is a CheckpointError
    naming the file."""
    payload = load_checkpoint(
        path, kind, {"config": dict, **(fields or {}), "state_dict": dict}, optional
    )
    try:
        config = config_type.validate_python(payload["config"])
    except ValidationError:
        raise CheckpointError(f"{path}: its {kind} config is not valid") from None
    try:
        model = build(config)
    except RuntimeError:  # sizes no memory holds
        raise CheckpointError(
            f"{path}: its {kind} config asks for a model too large to build"
        ) from None
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as error:
        first_line = str(error).strip().splitlines()[0]
        raise CheckpointError(f"{path}: does not fit {fits} ({first_line})") from None
    return model, config, payload


@dataclass(frozen=True)
class Checkpointing:
    """Save the training state to `path` every `every` steps; resume from it when it exists."""

    path: Path
    every: int
    identity: str

    def is_due(self, step: int, total_steps: int) -> bool:
        """After `step`, is a save due? (Never after the last step: the caller saves the result.)"""
        return (step + 1) % self.every == 0 and step + 1 < total_steps


def checkpointing_for(
    label: str,
    config: BaseModel,
    state_file: Path | None,
    every: int,
    of_target: Target | None = None,
) -> Checkpointing | None:
    """Checkpoints of one training run, valid only for this config (hash) and, for a
    decomposition, only on the target it decomposes (its weights' fingerprint)."""
    if state_file is None:
        return None
    identity = f"{label} {config_hash(config)}"
    if of_target is not None:
        identity += f" of target {of_target.fingerprint()}"
    return Checkpointing(state_file, every, identity)


@dataclass
class TrainingState:
    next_step: int
    model: dict[str, torch.Tensor]
    optimizer: dict[str, Any]
    generator: torch.Tensor
    global_rng: torch.Tensor
    extra: dict[str, Any]


def capture(
    next_step: int,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator,
    extra: dict[str, Any],
) -> TrainingState:
    return TrainingState(
        next_step=next_step,
        model={k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        optimizer=optimizer.state_dict(),
        generator=generator.get_state(),
        global_rng=torch.get_rng_state(),
        extra=extra,
    )


def restore(
    state: TrainingState,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator,
) -> None:
    model.load_state_dict(state.model)
    optimizer.load_state_dict(state.optimizer)
    generator.set_state(state.generator)
    torch.set_rng_state(state.global_rng)


def save_state(state: TrainingState, checkpointing: Checkpointing) -> None:
    payload = {"kind": TRAINING_STATE_KIND, "identity": checkpointing.identity, **vars(state)}
    save_checkpoint(payload, checkpointing.path)


def load_state(
    checkpointing: Checkpointing | None, log: Callable[[str], None]
) -> TrainingState | None:
    """The saved state to resume from, or None (no file; unreadable, or made for something else:
    then said in the log, and training starts over)."""
    if checkpointing is None or not checkpointing.path.is_file():
        return None
    try:
        payload = load_checkpoint(checkpointing.path, TRAINING_STATE_KIND)
    except CheckpointError as error:
        log(f"ignoring {error}; starting from step 0")
        return None
    if payload.get("identity") != checkpointing.identity:
        log(
            f"ignoring {checkpointing.path}: made with another config or target; starting from step 0"
        )
        return None
    state = TrainingState(**{key: payload[key] for key in TrainingState.__dataclass_fields__})
    log(f"resuming from {checkpointing.path} at step {state.next_step}")
    return state
