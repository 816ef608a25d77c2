"""The two leaky hard sigmoids that squash causal-importance pre-activations. Both act
elementwise: z of any shape (here (batch, C)) gives a tensor of z's shape."""

from __future__ import annotations

import torch
from torch import Tensor


def lower_leaky_hard_sigmoid(z: Tensor, alpha: float = 0.01) -> Tensor:
    """alpha*z for z <= 0; z on (0, 1]; 1 above. Used for the masks."""
    return torch.where(z <= 0, alpha * z, torch.clamp(z, max=1.0))


def upper_leaky_hard_sigmoid(z: Tensor, alpha: float = 0.01) -> Tensor:
    """0 for z <= 0; z on (0, 1]; 1 + alpha*(z - 1) above. Used only in importance minimality."""
    return torch.where(z > 1, 1 + alpha * (z - 1), torch.clamp(z, min=0.0))
