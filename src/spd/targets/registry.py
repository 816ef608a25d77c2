"""Dispatch from a target config to its toy family's module; target checkpoints on disk."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from torch import nn

from spd.config import TargetConfig, TMSTargetConfig
from spd.io import CheckpointError, load_checkpoint, save_checkpoint
from spd.targets import tms
from spd.targets.base import Target

TARGET_KIND = "target"


def train_target(
    config: TargetConfig,
    device: str,
    log: Callable[[str], None],
    state_file: Path | None = None,
    checkpoint_every: int = 1000,
) -> tuple[nn.Module, dict[str, object]]:
    return tms.train(config, device, log, state_file, checkpoint_every)


def build_target(model: nn.Module, config: TargetConfig) -> Target:
    assert isinstance(model, tms.TMSModel)
    return tms.as_target(model, config)


def save_target(model: nn.Module, config: TargetConfig, info: dict[str, object], path: Path) -> None:
    payload = {
        "kind": TARGET_KIND,
        "config": config.model_dump(mode="json"),
        "info": info,
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    }
    save_checkpoint(payload, path)


def load_target(path: str | Path, device: str) -> tuple[Target, TargetConfig, dict[str, object]]:
    """Rebuild a trained target from its checkpoint; wrong shapes or keys are a CheckpointError."""
    payload = load_checkpoint(path, TARGET_KIND)
    config = TMSTargetConfig.model_validate(payload["config"])
    model = tms.build_model(config)
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as error:
        first_line = str(error).strip().splitlines()[0]
        raise CheckpointError(f"{path}: does not fit its config ({first_line})") from None
    model = model.to(device).eval()
    for param in model.parameters():
        param.requires_grad_(False)
    return build_target(model, config), config, payload["info"]
