"""Decomposition checkpoints: the trained components and gates with the config that made them."""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch

from spd.config import SPDConfig, config_hash
from spd.decomp.component_model import ComponentModel
from spd.io import CheckpointError, load_checkpoint, save_checkpoint
from spd.targets.base import Target

DECOMPOSITION_KIND = "decomposition"


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
    """A hash of the target's weights: a decomposition's training state resumes only on it."""
    digest = hashlib.sha256()
    for name, tensor in sorted(target.model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]
