"""Stochastic masks m = g + (1 - g) * u, u ~ U(0, 1) (docs/method.md)."""

from __future__ import annotations

import torch
from torch import Tensor


def stochastic_mask(causal_importance: Tensor, generator: torch.Generator) -> Tensor:
    """Gradients reach `causal_importance` through the expression; u is drawn from `generator`."""
    uniform = torch.rand(
        causal_importance.shape,
        generator=generator,
        device=causal_importance.device,
        dtype=causal_importance.dtype,
    )
    return torch.addcmul(uniform, causal_importance, 1 - uniform)  # = g + (1 - g) u
