"""SPD training: any target that declares its decomposed `nn.Linear` layers and a batch sampler
is decomposed here, through the one optimisation loop (`spd.optim.loop`)."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
from torch import Tensor

from spd.checkpointing import checkpointing_for, load_state
from spd.config import SPDConfig, config_hash
from spd.decomp.component_model import ComponentModel
from spd.decomp.losses import (
    faithfulness_loss,
    importance_minimality_loss,
    layerwise_reconstruction_loss,
    reconstruction_mse,
)
from spd.decomp.masks import stochastic_mask
from spd.io import atomic_write
from spd.optim import schedules
from spd.optim.loop import Optimisation, optimise
from spd.targets.base import Target


def spd_losses(
    model: ComponentModel, x: Tensor, config: SPDConfig, generator: torch.Generator
) -> dict[str, Tensor]:
    """All four losses on one batch x: (batch, n_features), and their weighted total; each a
    scalar."""
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
    """Wall time of every training step that made it (restart candidates' included), over every
    process that ran part of them."""


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
    cuda_graph: bool = False,
) -> Decomposition:
    """Run SPD on `target` for config.steps steps; returns the trained components and gates.

    With a `state_file`, the training state is saved every `checkpoint_every` steps and a rerun
    resumes from it (see `spd.optim.loop.optimise`). `after_step(step, model)` runs after every step.

    With `config.restarts` > 1, candidates (seeds `candidate_seed(seed, k)`) first train for
    `config.restart_steps` steps of the full schedule; the one with the lowest mean total loss on
    the same fresh batches trains on to `config.steps` (only its steps reach `after_step`). The
    result is bit-identical to a plain run with the chosen candidate's seed. Candidates pause in
    state files next to `state_file` (a temporary folder without one), and the choice is recorded
    there, so a killed run resumes without retraining them.

    `cuda_graph` (target on a CUDA device) replays each step from one recorded CUDA graph
    (`spd.optim.loop.CudaGraphStep`): faster, equal to an eager run up to float rounding.
    """
    target = target.restricted_to(config.modules)
    if config.restarts == 1:
        return _train(
            target, config, log, state_file, checkpoint_every, after_step, cuda_graph=cuda_graph
        )
    with tempfile.TemporaryDirectory() as scratch:
        base = state_file if state_file is not None else Path(scratch) / "decomposition.state.pt"
        candidates = [
            (
                config.model_copy(update={"seed": candidate_seed(config.seed, k), "restarts": 1}),
                base.with_name(f"{base.name}.candidate{k}"),
            )
            for k in range(config.restarts)
        ]
        record = base.with_name(base.name + ".restarts.json")
        chosen, candidate_seconds = _choose_candidate(
            target, config, candidates, record, log, checkpoint_every, cuda_graph
        )
        candidate, path = candidates[chosen]
        log(f"restarts: candidate {chosen + 1} (seed {candidate.seed}) trains to the end")
        result = _train(
            target, candidate, log, path, checkpoint_every, after_step, cuda_graph=cuda_graph
        )
        for _, candidate_path in candidates:
            candidate_path.unlink(missing_ok=True)
        record.unlink(missing_ok=True)
        # the chosen candidate's own first steps are in its state, hence in result.seconds
        discarded = sum(s for k, s in enumerate(candidate_seconds) if k != chosen)
        return Decomposition(result.model, result.loss_history, result.seconds + discarded)


def _train(
    target: Target,
    config: SPDConfig,
    log: Callable[[str], None],
    state_file: Path | None,
    checkpoint_every: int,
    after_step: Callable[[int, ComponentModel], None] | None = None,
    stop_at: int | None = None,
    cuda_graph: bool = False,
) -> Decomposition:
    device = next(target.model.parameters()).device
    generator = torch.Generator(device=device).manual_seed(config.seed)
    torch.manual_seed(config.seed)  # CI-gate init draws from the global generator
    model = ComponentModel.from_config(target, config, generator)
    label = (
        "decomposition (CUDA graph)" if cuda_graph else "decomposition"
    )  # its Adam state differs
    checkpointing = checkpointing_for(label, config, state_file, checkpoint_every, of_target=target)
    run = Optimisation(
        model=model,
        optimizer=make_optimizer(model, config),
        generator=generator,
        steps=config.steps,
        log_every=config.log_every,
        learning_rate=schedules.named(config.lr_schedule, config.lr, config.steps),
        losses=lambda g: spd_losses(model, target.sample_batch(config.batch_size, g), config, g),
        cuda_graph=cuda_graph,
    )
    hook = None if after_step is None else (lambda step: after_step(step, model))
    trained = optimise(run, log, checkpointing, load_state(checkpointing, log), hook, stop_at)
    return Decomposition(model, pd.DataFrame(trained.history), trained.seconds)


SELECTION_BATCHES = 10  # fresh batches on which the restart candidates are compared


def mean_spd_losses(
    model: ComponentModel, config: SPDConfig, batches: int, generator: torch.Generator
) -> dict[str, float]:
    """Every SPD loss term, averaged over `batches` fresh batches (data and masks from `generator`)."""
    totals: dict[str, float] = {}
    with torch.no_grad():
        for _ in range(batches):
            x = model.target.sample_batch(config.batch_size, generator)
            for name, value in spd_losses(model, x, config, generator).items():
                totals[name] = totals.get(name, 0.0) + value.item() / batches
    return totals


def candidate_seed(seed: int, candidate: int) -> int:
    """Candidate 0 is the run's own seed; the others are far from every small seed, so that runs
    with neighbouring seeds share no candidate."""
    return seed + 1_000_003 * candidate


def _choose_candidate(
    target: Target,
    config: SPDConfig,
    candidates: list[tuple[SPDConfig, Path]],
    record: Path,
    log: Callable[[str], None],
    checkpoint_every: int,
    cuda_graph: bool = False,
) -> tuple[int, list[float]]:
    """The index of the candidate with the lowest loss after `restart_steps`, and each
    candidate's training seconds (both as `record` holds them where it has them for this config
    and target)."""
    identity = f"restarts of {config_hash(config)} on target {target.fingerprint()}"
    recorded = _recorded_choice(record, identity)
    if recorded is not None:
        return recorded
    device = next(target.model.parameters()).device
    losses, seconds = [], []
    for k, (candidate, path) in enumerate(candidates):
        log(
            f"restart candidate {k + 1}/{config.restarts} (seed {candidate.seed}): {config.restart_steps} steps"
        )
        run = _train(
            target,
            candidate,
            log,
            path,
            checkpoint_every,
            stop_at=config.restart_steps,
            cuda_graph=cuda_graph,
        )
        seconds.append(run.seconds)
        same_batches = torch.Generator(device=device).manual_seed(config.seed)
        losses.append(mean_spd_losses(run.model, config, SELECTION_BATCHES, same_batches)["total"])
        run.model.remove_hooks()  # this candidate is done with; the chosen one is trained anew
        log(f"restart candidate {k + 1}: loss {losses[-1]:.4e} after {config.restart_steps} steps")
    chosen = min(range(len(candidates)), key=losses.__getitem__)
    payload = json.dumps(
        {"identity": identity, "chosen": chosen, "losses": losses, "seconds": seconds}
    )
    atomic_write(record, lambda tmp: tmp.write_text(payload))
    return chosen, seconds


def _recorded_choice(record: Path, identity: str) -> tuple[int, list[float]] | None:
    if not record.is_file():
        return None
    saved = json.loads(record.read_text())
    if saved.get("identity") != identity:
        return None
    # a record written before records kept the candidates' seconds counts them as 0
    return saved["chosen"], saved.get("seconds", [0.0] * len(saved["losses"]))


__all__ = ["Decomposition", "decompose", "mean_spd_losses", "spd_losses"]
