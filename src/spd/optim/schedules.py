"""Learning-rate schedules: each maps a step t (0-based, of T steps) to the learning rate."""

from __future__ import annotations

import math
from collections.abc import Callable

Schedule = Callable[[int], float]


def constant(lr: float) -> Schedule:
    return lambda step: lr


def quarter_cosine(lr: float, steps: int) -> Schedule:
    """lr cos(pi/2 t / (T - 1)): lr at the first step, 0 at the last (a one-step run: lr)."""
    if steps == 1:
        return constant(lr)
    return lambda step: lr * math.cos(0.5 * math.pi * step / (steps - 1))


def half_cosine(lr: float, steps: int) -> Schedule:
    """lr (1 + cos(pi t / T)) / 2: lr at the first step, decaying to 0 one step after the last."""
    return lambda step: lr * 0.5 * (1 + math.cos(math.pi * step / steps))


def linear_decay(lr: float, steps: int) -> Schedule:
    """lr (1 - t / T): lr at the first step, lr / T at the last."""
    return lambda step: lr * (1 - step / steps)


def linear_warmup(lr: float, warmup_steps: int, then: Schedule) -> Schedule:
    """lr (t + 1) / W over the first W steps, then `then`, whose step 0 is step W."""

    def schedule(step: int) -> float:
        if step < warmup_steps:
            return lr * (step + 1) / warmup_steps
        return then(step - warmup_steps)

    return schedule


NAMED: dict[str, Callable[[float, int], Schedule]] = {
    "constant": lambda lr, steps: constant(lr),
    "cosine": quarter_cosine,
    "linear": linear_decay,
}


def named(name: str, lr: float, steps: int) -> Schedule:
    """The schedule a config's `lr_schedule` names, over `steps` steps."""
    return NAMED[name](lr, steps)
