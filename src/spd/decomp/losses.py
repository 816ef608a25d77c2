"""The four SPD losses (docs/method.md). Each is a pure function of tensors, returning a scalar."""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import torch
import torch.nn.functional as F
from torch import Tensor


def faithfulness_loss(
    target_weights: Sequence[Tensor], component_weights: Sequence[Tensor]
) -> Tensor:
    """sum_l ||W^l - U^l V^l||_F^2 / N, N the total number of entries of the decomposed matrices.

    Per layer l, target_weights[l] (W^l) and component_weights[l] (U^l V^l): (d_out, d_in).
    """
    squared_error = cast(
        Tensor,
        sum(
            F.mse_loss(uv, w, reduction="sum")
            for w, uv in zip(target_weights, component_weights, strict=True)
        ),
    )
    n_entries = sum(w.numel() for w in target_weights)
    return squared_error / n_entries


def reconstruction_mse(output: Tensor, target_output: Tensor) -> Tensor:
    """D for the toy models: mean squared error over batch x outputs. output, target_output:
    one shape, (batch, n_outputs) for a model's output."""
    return F.mse_loss(output, target_output)


def importance_minimality_loss(upper_causal_importances: Sequence[Tensor], pnorm: float) -> Tensor:
    """Mean over the batch of sum_l sum_c g_up^p (no division by L or C); per layer l,
    upper_causal_importances[l] (g_up): (batch, C)."""
    per_example = cast(Tensor, sum(g.pow(pnorm).sum(dim=-1) for g in upper_causal_importances))
    return per_example.mean()


def layerwise_reconstruction_loss(per_layer_losses: Sequence[Tensor]) -> Tensor:
    """(1/L) sum_l D(f(x | only layer l masked), f(x)); per_layer_losses: L scalars."""
    return torch.stack(list(per_layer_losses)).mean()
