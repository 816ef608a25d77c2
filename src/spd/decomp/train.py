"""The one SPD training loop: any target that declares its decomposed `nn.Linear` layers and a
batch sampler is decomposed here (spec 3-4)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
from torch import Tensor

from spd.config import SPDConfig
from spd.decomp.component_model import ComponentModel
from spd.decomp.loop import DivergenceError, Optimisation, checkpointing_for, optimise
from spd.decomp.losses import (
    faithfulness_loss,
    importance_minimality_loss,
    layerwise_reconstruction_loss,
    reconstruction_mse,
)
from spd.decomp.masks import stochastic_mask
from spd.targets.base import Target


def learning_rate(config: SPDConfig, step: int) -> float:
    """Paper mode's quarter-period cosine lr * cos(pi/2 * t / (T - 1)), or a constant."""
    if config.lr_schedule == "constant" or config.steps == 1:
        return config.lr
    return config.lr * math.cos(0.5 * math.pi * step / (config.steps - 1))


def spd_losses(
    model: ComponentModel, x: Tensor, config: SPDConfig, generator: torch.Generator
) -> dict[str, Tensor]:
    """All four losses on one batch, and their weighted total."""
    target_output, layer_inputs = model.forward_recording_inputs(x)
    ci_lower, ci_upper = model.causal_importances(layer_inputs, config.leaky_alpha)
    names = model.module_names

    faithfulness = faithfulness_loss(
        [model.target_weight(name) for name in names],
        [torch.matmul(*model.factors(name)) for name in names],
    )
    all_masks = {name: stochastic_mask(ci_lower[name], generator) for name in names}
    stochastic = reconstruction_mse(model.forward_masked(x, all_masks), target_output)
    layerwise = layerwise_reconstruction_loss(
        [
            reconstruction_mse(
                model.forward_masked(x, {name: stochastic_mask(ci_lower[name], generator)}),
                target_output,
            )
            for name in names
        ]
    )
    importance = importance_minimality_loss([ci_upper[name] for name in names], config.pnorm)
    total = (
        config.faithfulness_coeff * faithfulness
        + config.stochastic_recon_coeff * stochastic
        + config.layerwise_recon_coeff * layerwise
        + config.importance_minimality_coeff * importance
    )
    return {
        "faithfulness": faithfulness,
        "stochastic_recon": stochastic,
        "layerwise_recon": layerwise,
        "importance_minimality": importance,
        "total": total,
    }


@dataclass
class Decomposition:
    model: ComponentModel
    loss_history: pd.DataFrame
    seconds: float


def make_optimizer(model: ComponentModel, config: SPDConfig) -> torch.optim.Optimizer:
    """Adam (AdamW with weight decay 0) over U, V and the gate parameters."""
    return torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=0.0)


def decompose(
    target: Target,
    config: SPDConfig,
    log: Callable[[str], None] = print,
    state_file: Path | None = None,
    checkpoint_every: int = 1000,
    after_step: Callable[[int, ComponentModel], None] | None = None,
) -> Decomposition:
    """Run SPD on `target` for config.steps steps; returns the trained components and gates.

    With a `state_file`, the training state is saved every `checkpoint_every` steps and a rerun
    resumes from it (see `loop.optimise`). `after_step(step, model)` runs after every step.
    """
    target = target.restricted_to(config.modules)
    device = next(target.model.parameters()).device
    generator = torch.Generator(device=device).manual_seed(config.seed)
    torch.manual_seed(config.seed)  # CI-gate init draws from the global generator
    model = ComponentModel(target, config.C, config.d_gate, config.fused_gates, generator, config.tied_adam)
    checkpointing = checkpointing_for("decomposition", config, target, state_file, checkpoint_every)
    run = Optimisation(
        model=model,
        optimizer=make_optimizer(model, config),
        generator=generator,
        steps=config.steps,
        batch_size=config.batch_size,
        log_every=config.log_every,
        learning_rate=lambda step: learning_rate(config, step),
        sample_batch=target.sample_batch,
        batch_losses=lambda x, g: spd_losses(model, x, config, g),
    )
    start = time.perf_counter()
    hook = None if after_step is None else (lambda step: after_step(step, model))
    history = optimise(run, log, checkpointing, hook)
    return Decomposition(model, pd.DataFrame(history), time.perf_counter() - start)


__all__ = ["Decomposition", "DivergenceError", "decompose", "learning_rate", "spd_losses"]
