from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

TINY_TMS = {
    "name": "tms_tiny",
    "target": {"family": "tms", "n_features": 5, "d_hidden": 2, "steps": 300, "batch_size": 256},
    "decomposition": {
        "C": 8,
        "d_gate": 4,
        "importance_minimality_coeff": 3e-3,
        "pnorm": 1,
        "steps": 30,
        "batch_size": 64,
        "log_every": 10,
    },
    "evaluation": {"n_random": 200},
}

# The APD baseline's tiny decomposition settings (a TMS 5-2 target's).
TINY_APD = {
    "method": "apd",
    "C": 5,
    "m": 3,
    "topk": 0.211,
    "simplicity_coeff": 0.7,
    "schatten_p": 1.0,
    "lr": 3e-2,
    "steps": 30,
    "batch_size": 64,
    "log_every": 10,
}

TINY_RESID_MLP = {
    "name": "resid_tiny",
    "target": {
        "family": "resid_mlp",
        "n_features": 8,
        "d_embed": 16,
        "d_mlp": 4,
        "n_layers": 2,
        "feature_probability": 0.1,
        "steps": 200,
        "batch_size": 256,
    },
    "decomposition": {
        "C": 12,
        "d_gate": 4,
        "importance_minimality_coeff": 1e-4,
        "pnorm": 2,
        "lr": 2e-3,
        "lr_schedule": "constant",
        "steps": 30,
        "batch_size": 64,
        "log_every": 10,
    },
    "evaluation": {"n_random": 200},
}


@pytest.fixture
def tiny_config_path(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(TINY_TMS))
    return path


def tms_component_model(
    n_features: int, d_hidden: int, identity: bool, C: int, d_gate: int, tied_adam: str = "joint"
):
    """An untrained TMS target (tied weights) wrapped in a ComponentModel; deterministic."""
    import torch

    from spd.config import TMSTargetConfig
    from spd.decomp.component_model import ComponentModel
    from spd.families.tms import model as tms

    config = TMSTargetConfig(n_features=n_features, d_hidden=d_hidden, identity_layer=identity)
    torch.manual_seed(0)
    target_model = tms.build_model(config)
    target_model.tie_weights()
    generator = torch.Generator().manual_seed(0)
    return ComponentModel(
        tms.as_target(target_model, config), C, d_gate, True, generator, tied_adam
    )


def tiny_tms_target(device: str = "cpu"):
    """An untrained TMS 5-2 target (tied weights, frozen) on `device`; deterministic."""
    import torch

    from spd.config import TMSTargetConfig
    from spd.families.tms import model as tms

    config = TMSTargetConfig(n_features=5, d_hidden=2)
    torch.manual_seed(0)
    model = tms.build_model(config).to(device)
    model.tie_weights()
    for param in model.parameters():
        param.requires_grad_(False)
    return tms.as_target(model, config)


class Killed(Exception):
    """What `killed_at`'s log raises: the stand-in for a kill in the middle of a run."""


def killed_at(prefix: str) -> Callable[[str], None]:
    """A run's log that kills the run (raises Killed) at the first line starting with `prefix`."""

    def log(line: str) -> None:
        if line.startswith(prefix):
            raise Killed

    return log


class StepClock:
    """Stands in for the `time` module of `spd.optim.loop`: a clock that advances by one second
    per training step and not otherwise, so that a run's seconds count the steps it ran."""

    def __init__(self) -> None:
        self.now = 0.0

    def perf_counter(self) -> float:
        return self.now


@pytest.fixture
def step_clock(monkeypatch: pytest.MonkeyPatch) -> StepClock:
    from spd.optim import loop

    clock = StepClock()
    training_step = loop.training_step

    def timed_step(run, step):
        clock.now += 1.0
        return training_step(run, step)

    monkeypatch.setattr(loop, "time", clock)
    monkeypatch.setattr(loop, "training_step", timed_step)
    return clock
