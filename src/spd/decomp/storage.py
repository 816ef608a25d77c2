"""Decomposition checkpoints: the trained components and gates with the config that made them."""

from __future__ import annotations

from pathlib import Path

import torch
from pydantic import TypeAdapter, ValidationError
from torch import nn

from spd.config import APDConfig, DecompositionConfig, SPDConfig, config_hash
from spd.decomp.apd import APDModel
from spd.decomp.component_model import ComponentModel
from spd.io import CheckpointError, load_checkpoint, save_checkpoint
from spd.targets.base import Target

DECOMPOSITION_KIND = "decomposition"
_DECOMPOSITION_CONFIG: TypeAdapter[DecompositionConfig] = TypeAdapter(DecompositionConfig)


def save_decomposition(
    model: nn.Module, config: SPDConfig | APDConfig, record: dict[str, object], path: str | Path
) -> None:
    """`record`: how the run was made (its target's fingerprint, wall time, device, threads, code
    version), kept beside the weights so that evaluation and summaries can report it."""
    payload = {
        "kind": DECOMPOSITION_KIND,
        "config": config.model_dump(mode="json"),
        "config_hash": config_hash(config),
        "record": record,
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    }
    save_checkpoint(payload, path)


def load_decomposition(
    path: str | Path, target: Target
) -> tuple[ComponentModel | APDModel, SPDConfig | APDConfig, dict[str, object]]:
    """The trained SPD components and gates (or APD components), rebuilt on `target`, with the
    record of how they were made (empty for checkpoints written before records were kept)."""
    payload = load_checkpoint(
        path, DECOMPOSITION_KIND, {"config": dict, "state_dict": dict}, optional={"record": dict}
    )
    try:
        config = _DECOMPOSITION_CONFIG.validate_python(payload["config"])
    except ValidationError:
        raise CheckpointError(f"{path}: its decomposition config is not valid") from None
    model = untrained_decomposition(target, config)
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as error:
        first_line = str(error).strip().splitlines()[0]
        raise CheckpointError(f"{path}: does not fit the target ({first_line})") from None
    return model, config, dict(payload.get("record", {}))


def untrained_decomposition(
    target: Target, config: SPDConfig | APDConfig
) -> ComponentModel | APDModel:
    """The decomposition `config` describes, on `target`, before any training: what a saved state
    dict (a checkpoint's, or a training state's) is loaded into."""
    target = target.restricted_to(config.modules)
    generator = torch.Generator(device=next(target.model.parameters()).device)
    if isinstance(config, APDConfig):
        return APDModel.from_config(target, config, generator)
    return ComponentModel.from_config(target, config, generator)
