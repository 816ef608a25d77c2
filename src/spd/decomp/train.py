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

from spd.checkpointing import Checkpointing, capture, load_state, restore, save_state
from spd.config import SPDConfig, config_hash
from spd.decomp.component_model import ComponentModel
from spd.decomp.losses import (
    faithfulness_loss,
    importance_minimality_loss,
    layerwise_reconstruction_loss,
    reconstruction_mse,
)
from spd.decomp.masks import stochastic_mask
from spd.decomp.storage import target_fingerprint
from spd.targets.base import Target

LOSS_NAMES = ("faithfulness", "stochastic_recon", "layerwise_recon", "importance_minimality", "total")


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


class DivergenceError(RuntimeError):
    """A loss became NaN or infinite."""


def _format_losses(losses: dict[str, float]) -> str:
    short = {"faithfulness": "faith", "stochastic_recon": "stoch", "layerwise_recon": "layer",
             "importance_minimality": "imp", "total": "total"}
    return " ".join(f"{short[k]} {v:.3e}" for k, v in losses.items())


def make_optimizer(model: ComponentModel, config: SPDConfig) -> torch.optim.Optimizer:
    """Adam (AdamW with weight decay 0) over U, V and the gate parameters."""
    return torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=0.0)


def training_step(
    model: ComponentModel,
    optimizer: torch.optim.Optimizer,
    config: SPDConfig,
    step: int,
    generator: torch.Generator,
) -> dict[str, Tensor]:
    """One optimisation step on a fresh batch; returns the (still attached) losses."""
    for group in optimizer.param_groups:
        group["lr"] = learning_rate(config, step)
    batch = model.target.sample_batch(config.batch_size, generator)
    losses = spd_losses(model, batch, config, generator)
    optimizer.zero_grad(set_to_none=True)
    losses["total"].backward()
    optimizer.step()
    return losses


def _check_parameters_finite(model: ComponentModel, step: int) -> None:
    for name, param in model.named_parameters():
        if not torch.isfinite(param).all():
            raise DivergenceError(f"non-finite parameter {name} after step {step}")


def decompose(
    target: Target,
    config: SPDConfig,
    log: Callable[[str], None] = print,
    state_file: Path | None = None,
    checkpoint_every: int = 1000,
) -> Decomposition:
    """Run SPD on `target` for config.steps steps; returns the trained components and gates.

    With a `state_file`, the full training state (components, gates, optimiser, RNG states, loss
    history) is saved atomically every `checkpoint_every` steps, and a rerun resumes from it:
    the result is bit-identical (CPU) to an uninterrupted run. A non-finite loss stops the run at
    that step, a non-finite parameter at the next save; the last good state is kept.
    """
    target = target.restricted_to(config.modules)
    device = next(target.model.parameters()).device
    generator = torch.Generator(device=device).manual_seed(config.seed)
    torch.manual_seed(config.seed)  # CI-gate init draws from the global generator
    model = ComponentModel(target, config.C, config.d_gate, config.fused_gates, generator)
    optimizer = make_optimizer(model, config)
    checkpointing = None
    if state_file is not None:
        identity = f"decomposition {config_hash(config)} of target {target_fingerprint(target)}"
        checkpointing = Checkpointing(state_file, checkpoint_every, identity)
    first_step, history = 0, []
    state = load_state(checkpointing, log)
    if state is not None:
        restore(state, model, optimizer, generator)
        first_step, history = state.next_step, state.extra["history"]
    start = last_time = time.perf_counter()
    last_step = first_step
    for step in range(first_step, config.steps):
        losses = training_step(model, optimizer, config, step, generator)
        is_last = step == config.steps - 1
        if not math.isfinite(losses["total"].item()):
            values = {name: loss.item() for name, loss in losses.items()}
            raise DivergenceError(f"non-finite loss at step {step}: {_format_losses(values)}")
        if step % config.log_every == 0 or is_last:
            values = {name: loss.item() for name, loss in losses.items()}
            history.append({"step": step, "lr": learning_rate(config, step), **values})
            now = time.perf_counter()
            rate = (step - last_step) / (now - last_time) if step > last_step else float("nan")
            log(f"step {step + 1}/{config.steps} {_format_losses(values)} | {rate:.1f} steps/s")
            last_time, last_step = now, step
        if checkpointing is not None and checkpointing.is_due(step, config.steps):
            _check_parameters_finite(model, step)
            save_state(capture(step + 1, model, optimizer, generator, {"history": history}), checkpointing)
    _check_parameters_finite(model, config.steps - 1)
    return Decomposition(model, pd.DataFrame(history), time.perf_counter() - start)
