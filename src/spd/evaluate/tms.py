"""TMS ground truth (spec 7): each feature j is one rank-one mechanism, column j of W in linear1."""

from __future__ import annotations

import torch
from torch import Tensor

from spd.decomp.components import subcomponent_weights


def feature_match(U: Tensor, V: Tensor, W: Tensor) -> tuple[Tensor, Tensor]:
    """Per feature j: max_c cos(V[c, j] U[:, c], W[:, j]) and the norm ratio at that c.

    U: (d_hidden, C), V: (C, n_features), W: (d_hidden, n_features). Returns two (n_features,).
    """
    pieces = subcomponent_weights(U, V)  # (C, d_hidden, n_features): column j is V[c, j] U[:, c]
    cosines = torch.nn.functional.cosine_similarity(pieces, W.unsqueeze(0), dim=1)  # (C, n_features)
    best_cos, best_c = cosines.max(dim=0)
    features = torch.arange(W.shape[1])
    best_norm = pieces[best_c, :, features].norm(dim=-1)
    return best_cos, best_norm / W.norm(dim=0)


def mmcs_ml2r(U: Tensor, V: Tensor, W: Tensor) -> tuple[float, float]:
    """Mean max cosine similarity and mean L2 ratio of the best-matching subcomponents."""
    cosines, ratios = feature_match(U, V, W)
    return cosines.mean().item(), ratios.mean().item()
