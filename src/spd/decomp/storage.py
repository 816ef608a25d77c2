"""Decomposition checkpoints: the trained components and gates with the config that made them."""

from __future__ import annotations

from pathlib import Path

import torch
from pydantic import TypeAdapter
from torch import nn

from spd.checkpointing import load_model, save_model
from spd.config import APDConfig, DecompositionConfig, SPDConfig, config_hash
from spd.decomp.apd import APDModel
from spd.decomp.component_model import ComponentModel
from spd.targets.base import Target

DECOMPOSITION_KIND = "decomposition"
_DECOMPOSITION_CONFIG: TypeAdapter[DecompositionConfig] = TypeAdapter(DecompositionConfig)


def save_decomposition(
    model: nn.Module, config: SPDConfig | APDConfig, record: dict[str, object], path: str | Path
) -> None:
    """`record`: how the run was made (its target's fingerprint, wall time, device, threads, code
    version), kept beside the weights so that evaluation and summaries can report it."""
    save_model(
        DECOMPOSITION_KIND, model, config, path, config_hash=config_hash(config), record=record
    )


def load_decomposition(
    path: str | Path, target: Target
) -> tuple[ComponentModel | APDModel, SPDConfig | APDConfig, dict[str, object]]:
    """The trained SPD components and gates (or APD components), rebuilt on `target`, with the
    record of how they were made (empty for checkpoints written before records were kept)."""
    model, config, payload = load_model(
        path,
        DECOMPOSITION_KIND,
        _DECOMPOSITION_CONFIG,
        lambda config: untrained_decomposition(target, config),
        "the target",
        optional={"record": dict},
    )
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
