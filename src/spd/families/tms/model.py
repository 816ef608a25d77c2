"""Toy Model of Superposition (docs/method.md, "Toy models"): model, data, training, and ground truth.

x_hat = ReLU(W^T [I] W x + b), with linear2 tied to linear1 (linear2.weight == linear1.weight^T).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from spd.checkpointing import Checkpointing, TrainingState, checkpointing_for, load_state
from spd.config import ConfigError, TMSTargetConfig
from spd.optim import schedules
from spd.optim.loop import Optimisation, optimise
from spd.targets.base import Target, sparse_feature_batch


class TMSModel(nn.Module):
    """linear1: W, (d_hidden, n_features); linear2: weight (n_features, d_hidden), bias
    (n_features,); hidden (the "-id" variants): the identity, (d_hidden, d_hidden)."""

    def __init__(self, n_features: int, d_hidden: int, identity_layer: bool) -> None:
        super().__init__()
        self.linear1 = nn.Linear(n_features, d_hidden, bias=False)
        self.linear2 = nn.Linear(d_hidden, n_features, bias=True)
        # Built last so that it draws no random numbers before linear1/linear2 are initialised:
        # with the identity fixed, a "-id" target then trains exactly like its plain twin.
        self.hidden: nn.Linear | None = None
        if identity_layer:
            self.hidden = nn.Linear(d_hidden, d_hidden, bias=False)
            with torch.no_grad():
                self.hidden.weight.copy_(torch.eye(d_hidden))
            self.hidden.weight.requires_grad_(False)

    def forward(self, x: Tensor) -> Tensor:
        """x: (batch, n_features) -> x_hat: (batch, n_features)."""
        hidden = self.linear1(x)
        if self.hidden is not None:
            hidden = self.hidden(hidden)
        return F.relu(self.linear2(hidden))

    def tied_forward(self, x: Tensor) -> Tensor:
        """Training-time forward: linear2 uses linear1's weight transposed. x: (batch, n_features)
        -> x_hat: (batch, n_features)."""
        hidden = self.linear1(x)
        if self.hidden is not None:
            hidden = self.hidden(hidden)
        return F.relu(F.linear(hidden, self.linear1.weight.T, self.linear2.bias))

    @torch.no_grad()
    def tie_weights(self) -> None:
        """linear2.weight = linear1.weight^T, in a storage of its own (training may have shared one)."""
        self.linear2.weight = nn.Parameter(
            self.linear1.weight.T.clone(), requires_grad=self.linear2.weight.requires_grad
        )


def build_model(config: TMSTargetConfig) -> TMSModel:
    model = TMSModel(config.n_features, config.d_hidden, config.identity_layer)
    with torch.no_grad():
        if config.weight_init == "xavier_normal":
            fans = config.d_hidden * (config.n_features + config.init_instances)
            model.linear1.weight.normal_(0.0, math.sqrt(2 / fans))
        if config.zero_bias_init:
            model.linear2.bias.zero_()
    return model


def batch_sampler(config: TMSTargetConfig) -> Callable[[int, torch.Generator], Tensor]:
    """(batch_size, generator) -> a (batch_size, n_features) batch, active values in [0, 1)."""

    def sample(batch_size: int, generator: torch.Generator) -> Tensor:
        return sparse_feature_batch(
            batch_size, config.n_features, config.feature_probability, generator, low=0.0
        )

    return sample


def represented_features(model: TMSModel, min_norm: float) -> Tensor:
    """Boolean mask over features, (n_features,): is column j of W long enough to count as
    represented?"""
    return model.linear1.weight.detach().norm(dim=0) >= min_norm


def missing_features(model: TMSModel, config: TMSTargetConfig) -> list[int]:
    """The features the target does not represent: for them there is no mechanism to recover."""
    return torch.nonzero(~represented_features(model, config.min_feature_norm)).flatten().tolist()


def ground_truth_mechanisms(model: TMSModel) -> Tensor:
    """Columns of W, (d_hidden, n_features): feature j's rank-one mechanism in linear1."""
    return model.linear1.weight.detach()


def train_once(
    config: TMSTargetConfig,
    seed: int,
    device: str,
    log: Callable[[str], None],
    checkpointing: Checkpointing | None = None,
    resume_from: TrainingState | None = None,
    seeds_tried: Sequence[int] = (),
) -> tuple[TMSModel, float]:
    """Train one target from `seed` (or from a saved state of that seed); saves its state
    periodically with `checkpointing`."""
    torch.manual_seed(seed)
    model = build_model(config).to(device)
    sample = batch_sampler(config)
    if config.tied_adam == "per_layer":
        model.linear2.weight = nn.Parameter(model.linear1.weight.detach().T)  # a view: one storage
        params = [model.linear1.weight, model.linear2.weight, model.linear2.bias]
        forward = model.forward
    else:
        model.linear2.weight.requires_grad_(False)
        params = [model.linear1.weight, model.linear2.bias]
        forward = model.tied_forward

    def losses(generator: torch.Generator) -> dict[str, Tensor]:
        x = sample(config.batch_size, generator)
        return {"total": F.mse_loss(forward(x), x)}

    run = Optimisation(
        model=model,
        optimizer=torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay),
        generator=torch.Generator(device=device).manual_seed(seed),
        steps=config.steps,
        log_every=max(config.steps // 5, 1),
        learning_rate=schedules.named(config.lr_schedule, config.lr, config.steps),
        losses=losses,
        extra={"seed": seed, "seeds_tried": list(seeds_tried)},
    )
    trained = optimise(
        run, lambda line: log(f"  target seed {seed} {line}"), checkpointing, resume_from
    )
    model.tie_weights()
    model.eval()
    for param in model.parameters():
        param.requires_grad_(False)
    return model, trained.history[-1]["total"]


def train(
    config: TMSTargetConfig,
    device: str,
    log: Callable[[str], None],
    state_file: Path | None = None,
    checkpoint_every: int = 1000,
) -> tuple[TMSModel, dict[str, object]]:
    """Train with seeds config.seed, config.seed+1, ... until every feature is represented.

    With a `state_file`, the training state is saved every `checkpoint_every` steps and a rerun
    resumes from it (same seed, same step), ending bit-identical to an uninterrupted run.
    """
    checkpointing = checkpointing_for("target", config, state_file, checkpoint_every)
    state = load_state(checkpointing, log)
    first_seed = config.seed if state is None else int(state.extra["seed"])
    tried: list[int] = [] if state is None else list(state.extra["seeds_tried"])
    for seed in range(first_seed, config.seed + config.max_seed_tries):
        resume_from = state if seed == first_seed else None
        model, final_loss = train_once(config, seed, device, log, checkpointing, resume_from, tried)
        tried.append(seed)
        represented = represented_features(model, config.min_feature_norm)
        log(
            f"target seed {seed}: {int(represented.sum())}/{config.n_features} features represented"
        )
        if bool(represented.all()):
            return model, {"seed_used": seed, "seeds_tried": tried, "final_loss": final_loss}
    raise ConfigError(
        f"target: no seed in {tried} represented all {config.n_features} features; "
        "raise target.max_seed_tries or lower target.min_feature_norm"
    )


def as_target(model: TMSModel, config: TMSTargetConfig) -> Target:
    modules = ["linear1", "linear2"] + (["hidden"] if model.hidden is not None else [])
    return Target(
        model=model,
        decomposed_modules=tuple(modules),
        sample_batch=batch_sampler(config),
        tied_modules={"linear2": "linear1"},
    )
