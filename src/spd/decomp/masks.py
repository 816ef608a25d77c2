"""Stochastic masks m = g + (1 - g) * u, u ~ U(0, 1) (docs/method.md)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from spd.kernels import compiled_masked_inner, masked_inner_available, uniform


@dataclass(frozen=True)
class StochasticMask:
    """A mask kept as its causal importances g and noise u, both (batch, C): applied to the
    inner activations it is one pass of the C++ kernel where that runs."""

    causal_importance: Tensor
    uniform: Tensor

    def dense(self) -> Tensor:
        """m: (batch, C); gradients reach g through the expression."""
        return torch.addcmul(self.uniform, self.causal_importance, 1 - self.uniform)


def stochastic_mask(causal_importance: Tensor, generator: torch.Generator) -> StochasticMask:
    """u is drawn from `generator` in the shape of `causal_importance`: (batch, C)."""
    return StochasticMask(
        causal_importance, uniform(causal_importance.shape, generator, causal_importance.dtype)
    )


def _eager_masked_inner(inner_acts: Tensor, g: Tensor, u: Tensor) -> Tensor:
    """inner_acts * m in PyTorch ops, m the `StochasticMask` of g and u: the expression the C++
    kernel must round as. inner_acts, g, u and the result: (batch, C)."""
    return inner_acts * StochasticMask(g, u).dense()


def apply_mask(inner_acts: Tensor, mask: Tensor | StochasticMask) -> Tensor:
    """inner_acts * m, (batch, C): the same bits whichever way it is computed. inner_acts:
    (batch, C); mask: m itself, (batch, C), or a StochasticMask of that shape."""
    if isinstance(mask, Tensor):
        return inner_acts * mask
    g, u = mask.causal_importance, mask.uniform
    fusable = (
        inner_acts.device.type == "cpu"
        and inner_acts.dtype == g.dtype == torch.float32
        and inner_acts.shape == g.shape
        and inner_acts.is_contiguous()
        and g.is_contiguous()
    )
    if fusable and masked_inner_available(_eager_masked_inner):
        return compiled_masked_inner(inner_acts, g, u)
    return _eager_masked_inner(inner_acts, g, u)
