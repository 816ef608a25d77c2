"""Rank-one subcomponents U, V of one decomposed matrix, and their initialisation."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class LinearComponents(nn.Module):
    """W ~ U V with V: (C, d_in) reading the input and U: (d_out, C) writing the output."""

    def __init__(self, U: Tensor, V: Tensor) -> None:
        """U: (d_out, C) and V: (C, d_in) become the parameters."""
        super().__init__()
        self.U = nn.Parameter(U)
        self.V = nn.Parameter(V)

    @classmethod
    def initialised_from(
        cls, weight: Tensor, C: int, generator: torch.Generator
    ) -> LinearComponents:
        """Paper-mode init: unit-norm rows of V and columns of U, U[:, c] scaled by u_c^T W v_c.
        weight: the target's W, (d_out, d_in)."""
        d_out, d_in = weight.shape
        V = torch.randn(C, d_in, generator=generator, device=weight.device)
        U = torch.randn(d_out, C, generator=generator, device=weight.device)
        V = V / V.norm(dim=1, keepdim=True)
        U = U / U.norm(dim=0, keepdim=True)
        projection = torch.einsum("oc,oi,ci->c", U, weight, V)
        return cls(U * projection, V)

    @classmethod
    def tied_to(cls, source: LinearComponents) -> LinearComponents:
        """The transposed layer's own parameters, sharing `source`'s storage (U' = V^T, V' = U^T):
        an update of either set moves both, but each set keeps its own gradient and Adam state."""
        return cls(source.V.detach().T, source.U.detach().T)


def component_weight(U: Tensor, V: Tensor) -> Tensor:
    """The sum of all subcomponents, U V: (d_out, d_in). U: (d_out, C), V: (C, d_in)."""
    return U @ V


def subcomponent_weights(U: Tensor, V: Tensor) -> Tensor:
    """Each rank-one piece U[:, c] V[c, :] separately: (C, d_out, d_in). U: (d_out, C),
    V: (C, d_in)."""
    return torch.einsum("oc,ci->coi", U, V)
