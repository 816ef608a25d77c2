"""The one optimisation loop: target training and every decomposition method run it. A fresh
batch per step, the run's losses, the optimiser's update at the scheduled learning rate, progress
lines with elapsed time and ETA, the divergence guard and resumable training-state checkpoints."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from spd.checkpointing import Checkpointing, TrainingState, capture, restore, save_state
from spd.optim.schedules import Schedule

_SHORT_NAMES = {
    "faithfulness": "faith",
    "stochastic_recon": "stoch",
    "layerwise_recon": "layer",
    "importance_minimality": "imp",
    "minimality": "min",
    "simplicity": "simp",
}


class DivergenceError(RuntimeError):
    """A loss or a parameter became NaN or infinite."""


@dataclass(frozen=True)
class Optimisation:
    """One training run (a target's, or a decomposition's): `losses(generator)` draws a fresh
    batch (and any masks) from the generator and returns named losses including "total", which
    is minimised; each loss is a scalar tensor."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    generator: torch.Generator
    steps: int
    log_every: int
    learning_rate: Schedule
    losses: Callable[[torch.Generator], dict[str, Tensor]]
    extra: Mapping[str, object] = field(default_factory=dict)
    """Saved with every training state besides the loss history and the elapsed time ("history"
    and "elapsed_s", which these keys must not use), e.g. the seed being tried."""
    cuda_graph: bool = False  # replay each step as one recorded CUDA graph (CudaGraphStep)


@dataclass(frozen=True)
class Trained:
    """What `optimise` returns: the loss history (step, learning rate and every loss, every
    `log_every` steps and the last) and the wall time of the steps, in seconds, over every
    process that ran part of them (a resumed run adds the time its saved state had taken)."""

    history: list[dict[str, float]]
    seconds: float


def format_losses(losses: dict[str, float]) -> str:
    return " ".join(f"{_SHORT_NAMES.get(k, k)} {v:.3e}" for k, v in losses.items())


def _update(run: Optimisation) -> dict[str, Tensor]:
    """Losses on a fresh batch (scalars by name), then one optimiser update at the learning rate
    already set."""
    losses = run.losses(run.generator)
    run.optimizer.zero_grad(set_to_none=True)
    losses["total"].backward()
    run.optimizer.step()
    return losses


def training_step(run: Optimisation, step: int) -> dict[str, Tensor]:
    """One optimisation step on a fresh batch; returns the (still attached) losses, scalars by
    name."""
    for group in run.optimizer.param_groups:
        group["lr"] = run.learning_rate(step)
    return _update(run)


class CudaGraphStep:
    """`training_step` recorded once as a CUDA graph and replayed for every later step: one launch
    per step instead of hundreds of small kernels, which bound the toy models' step time on a GPU.

    The batch and the masks are drawn inside the graph from `run.generator`, registered with it, so
    each replay draws fresh ones. Adam runs `capturable`, its learning rate a device tensor that
    each step refills. The first WARMUP_STEPS steps run eagerly on a side stream, as a capture
    requires; every step, recorded or not, is one real training step. Results match an eager run
    up to float rounding (not bit for bit)."""

    WARMUP_STEPS = 3

    def __init__(self, run: Optimisation) -> None:
        if run.generator.device.type != "cuda":
            raise ValueError("a CUDA graph step needs the model and generator on a CUDA device")
        self.run = run
        self.graph: torch.cuda.CUDAGraph | None = None
        self.losses: dict[str, Tensor] = {}
        self.eager_steps = 0
        self.side_stream = torch.cuda.Stream(run.generator.device)
        for group in run.optimizer.param_groups:  # after any restore, which sets them from the save
            group["capturable"] = True
            group["lr"] = torch.tensor(float(group["lr"]), device=run.generator.device)
            for param in group["params"]:
                state = run.optimizer.state.get(param, {})
                if "step" in state:
                    state["step"] = state["step"].to(device=param.device, dtype=torch.float32)

    def __call__(self, step: int) -> dict[str, Tensor]:
        """Training step `step`; returns its losses, scalars by name (once recorded, the graph's
        own output tensors, which each replay refills)."""
        for group in self.run.optimizer.param_groups:
            group["lr"].fill_(self.run.learning_rate(step))
        if self.graph is None and self.eager_steps < self.WARMUP_STEPS:
            self.eager_steps += 1
            self.side_stream.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(self.side_stream):
                losses = _update(self.run)
            torch.cuda.current_stream().wait_stream(self.side_stream)
            return losses
        if self.graph is None:
            # no grads when recording (its zero_grad is then a no-op): the recorded backward writes
            # grads allocated in the graph's own memory pool
            self.run.optimizer.zero_grad(set_to_none=True)
            self.graph = torch.cuda.CUDAGraph()
            self.graph.register_generator_state(self.run.generator)
            with torch.cuda.graph(self.graph):
                self.losses = _update(self.run)
        self.graph.replay()
        return self.losses


def _check_parameters_finite(model: nn.Module, step: int) -> None:
    for name, param in model.named_parameters():
        if not torch.isfinite(param).all():
            raise DivergenceError(f"non-finite parameter {name} after step {step}")


def clock(seconds: float) -> str:
    """seconds as h:mm:ss, rounded to the second."""
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes // 60}:{minutes % 60:02d}:{secs:02d}"


def _timing(step: int, first_step: int, end: int, elapsed: float, before: float = 0.0) -> str:
    """' | elapsed h:mm:ss, ETA h:mm:ss': the run's time, `before` (its steps before a resume)
    plus `elapsed` (this process's steps, from `first_step`), and the ETA at this process's mean
    rate so far."""
    done = step + 1 - first_step
    if done < 2 or elapsed <= 0:
        return ""
    eta = (end - step - 1) * elapsed / done
    return f" | elapsed {clock(before + elapsed)}, ETA {clock(eta)}"


def optimise(
    run: Optimisation,
    log: Callable[[str], None],
    checkpointing: Checkpointing | None = None,
    resume_from: TrainingState | None = None,
    after_step: Callable[[int], None] | None = None,
    stop_at: int | None = None,
) -> Trained:
    """Run every step (from `resume_from`, a state saved by this run, when given); returns the
    loss history and the steps' wall time (`Trained`).

    With `checkpointing`, the full state (parameters, optimiser, RNG states, loss history, the
    steps' elapsed time, `run.extra`) is saved atomically every `checkpointing.every` steps; a rerun resumes from it
    and ends bit-identical (CPU) to an uninterrupted run. A non-finite loss stops the run at that
    step, a non-finite parameter at the next save; the last good state is kept. `after_step(step)`, if given, runs
    after every step (benchmarks use it to evaluate mid-run). `stop_at` pauses the run before that
    step (the schedule stays the full run's), saving the state there, so a later call resumes it.
    With `run.cuda_graph`, steps are replayed from a recorded CUDA graph (CudaGraphStep).
    """
    first_step, history, seconds_before = 0, [], 0.0
    if resume_from is not None:
        restore(resume_from, run.model, run.optimizer, run.generator)
        # target-training states saved before target training kept a loss history have none,
        # and states saved before they kept the elapsed time have no elapsed time
        first_step, history = resume_from.next_step, resume_from.extra.get("history", [])
        seconds_before = float(resume_from.extra.get("elapsed_s", 0.0))
    started = last_time = time.perf_counter()

    def elapsed_s() -> float:  # this run's steps, including those before a resume
        return seconds_before + time.perf_counter() - started

    last_step = first_step
    end = run.steps if stop_at is None else min(stop_at, run.steps)
    step_once = CudaGraphStep(run) if run.cuda_graph else (lambda step: training_step(run, step))
    for step in range(first_step, end):
        losses = step_once(step)
        is_last = step == run.steps - 1
        if not math.isfinite(losses["total"].item()):
            values = {name: loss.item() for name, loss in losses.items()}
            raise DivergenceError(f"non-finite loss at step {step}: {format_losses(values)}")
        if step % run.log_every == 0 or is_last:
            values = {name: loss.item() for name, loss in losses.items()}
            history.append({"step": step, "lr": run.learning_rate(step), **values})
            now = time.perf_counter()
            rate = (
                f" | {(step - last_step) / (now - last_time):.1f} steps/s"
                if step > last_step
                else ""
            )
            log(
                f"step {step + 1}/{run.steps} {format_losses(values)}{rate}{_timing(step, first_step, end, now - started, seconds_before)}"
            )
            last_time, last_step = now, step
        pausing = step + 1 == end < run.steps
        if checkpointing is not None and (pausing or checkpointing.is_due(step, run.steps)):
            _check_parameters_finite(run.model, step)
            extra = {**run.extra, "history": history, "elapsed_s": elapsed_s()}
            save_state(
                capture(step + 1, run.model, run.optimizer, run.generator, extra), checkpointing
            )
        if after_step is not None:
            after_step(step)
    _check_parameters_finite(run.model, end - 1)
    return Trained(history, elapsed_s())
