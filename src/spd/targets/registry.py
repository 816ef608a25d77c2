"""Dispatch from a target config to its toy family's module; target checkpoints on disk."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

from pydantic import TypeAdapter
from torch import Tensor, nn

from spd.checkpointing import load_model, save_model
from spd.config import TargetConfig, config_hash
from spd.families.registry import family
from spd.targets.base import Target

TARGET_KIND = "target"
_TARGET_CONFIG: TypeAdapter[TargetConfig] = TypeAdapter(TargetConfig)


def train_target(
    config: TargetConfig,
    device: str,
    log: Callable[[str], None],
    state_file: Path | None = None,
    checkpoint_every: int = 1000,
) -> tuple[nn.Module, dict[str, object]]:
    return family(config).train(config, device, log, state_file, checkpoint_every)


def build_target(model: nn.Module, config: TargetConfig) -> Target:
    return family(config).as_target(model, config)


def untrained_target(config: TargetConfig) -> Target:
    """The target's structure before training: what its layer shapes are."""
    return build_target(family(config).build_model(config), config)


def save_target(
    model: nn.Module, config: TargetConfig, info: dict[str, object], path: Path
) -> None:
    save_model(TARGET_KIND, model, config, path, info=info)


def fingerprint(config: TargetConfig, state_dict: dict[str, Tensor]) -> str:
    """A short hash of a trained target: its settings (as `config_hash` reads them: a setting
    left at its default does not count, so a new optional setting changes no fingerprint) and
    every weight's bytes. state_dict: the model's tensors by name, each of any shape."""
    digest = hashlib.sha256(config_hash(config).encode())
    for name in sorted(state_dict):
        digest.update(name.encode())
        digest.update(state_dict[name].detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:12]


def missing_features(model: nn.Module, config: TargetConfig) -> list[int]:
    """Features the trained target does not represent (no ground truth to score them by)."""
    return family(config).missing_features(model, config)


def load_target(path: str | Path, device: str) -> tuple[Target, TargetConfig, dict[str, object]]:
    """Rebuild a trained target from its checkpoint; wrong shapes or keys are a CheckpointError.
    The info returned is the checkpoint's, with the target's `fingerprint` added."""
    model, config, payload = load_model(
        path,
        TARGET_KIND,
        _TARGET_CONFIG,
        lambda config: family(config).build_model(config),
        "its config",
        fields={"info": dict},
    )
    model = model.to(device).eval()
    for param in model.parameters():
        param.requires_grad_(False)
    info = {**payload["info"], "fingerprint": fingerprint(config, payload["state_dict"])}
    return build_target(model, config), config, info
