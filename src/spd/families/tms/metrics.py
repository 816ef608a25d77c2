"""TMS ground truth (docs/method.md): each feature j is one rank-one mechanism, column j of W in linear1."""

from __future__ import annotations

from typing import cast

import torch
from torch import Tensor

from spd.config import EvalConfig
from spd.decomp.apd import APDModel
from spd.decomp.component_model import ComponentModel
from spd.decomp.components import subcomponent_weights
from spd.evaluate.causal_importance_metrics import (
    EvaluationCI,
    Row,
    active_fraction,
    alive_mask,
    ci_pattern_rows,
)
from spd.families.tms.model import TMSModel, ground_truth_mechanisms


def _target_model(model: ComponentModel | APDModel) -> TMSModel:
    """The TMS target these metrics are computed on."""
    return cast(TMSModel, model.target.model)


def feature_match(U: Tensor, V: Tensor, W: Tensor) -> tuple[Tensor, Tensor]:
    """Per feature j: max_c cos(V[c, j] U[:, c], W[:, j]) and the norm ratio at that c.

    U: (d_hidden, C), V: (C, n_features), W: (d_hidden, n_features). Returns two (n_features,).
    """
    return piece_match(subcomponent_weights(U, V), W)


def piece_match(pieces: Tensor, W: Tensor) -> tuple[Tensor, Tensor]:
    """Per feature j: the best cosine over pieces c of pieces[c, :, j] with W[:, j], and that
    piece's norm ratio. pieces: (C, d_hidden, n_features), e.g. SPD's rank-one subcomponents or
    APD's rank-m components."""
    cosines = torch.nn.functional.cosine_similarity(
        pieces, W.unsqueeze(0), dim=1
    )  # (C, n_features)
    best_cos, best_c = cosines.max(dim=0)
    features = torch.arange(W.shape[1])
    best_norm = pieces[best_c, :, features].norm(dim=-1)
    return best_cos, best_norm / W.norm(dim=0)


@torch.no_grad()
def apd_metric_rows(model: APDModel) -> list[Row]:
    """MMCS and ML2R of APD's linear1 components, (C, d_hidden, n_features), against the columns
    of W, (d_hidden, n_features)."""
    if "linear1" not in model.module_names:
        return []
    cosines, ratios = piece_match(
        model.component_weights("linear1"), ground_truth_mechanisms(_target_model(model))
    )
    return feature_match_rows(cosines, ratios)


def feature_match_rows(cosines: Tensor, ratios: Tensor) -> list[Row]:
    """linear1's MMCS and ML2R from the per-feature best cosines and norm ratios, both
    (n_features,), each with its sample standard deviation over the features (the ± the SPD and
    APD papers give beside one run's values)."""
    return [
        ("linear1", "mmcs", cosines.mean().item(), "cosine"),
        ("linear1", "mmcs_std", cosines.std().item(), "cosine"),
        ("linear1", "ml2r", ratios.mean().item(), "ratio"),
        ("linear1", "ml2r_std", ratios.std().item(), "ratio"),
    ]


# Layers whose subcomponents should each fire for exactly one one-hot feature probe.
FEATURE_ALIGNED_LAYERS = ("linear1", "linear2")


# The identity layer of the "-id" variants: its subcomponents should be important on almost every input.
IDENTITY_LAYER = "hidden"


def metric_rows(model: ComponentModel, ci: EvaluationCI, config: EvalConfig) -> list[Row]:
    """Per layer, the subcomponents alive on the one-hot probes alone; CI-pattern errors of
    linear1/linear2; MMCS / ML2R of linear1 against the columns of W; the identity-layer report.
    The CIs: per module name, (n_features, C) on the probes and (n_random, C) on the random
    batch."""
    rows: list[Row] = [
        (
            name,
            "alive_on_probes",
            alive_mask(ci.probes[name], config.alive_threshold).sum().item(),
            "count",
        )
        for name in model.module_names
    ]
    rows += [
        row
        for name in model.module_names
        if name in FEATURE_ALIGNED_LAYERS
        for row in ci_pattern_rows(name, ci.probes[name], config)
    ]
    if "linear1" in model.module_names:
        with torch.no_grad():
            U, V = model.factors("linear1")
            cosines, ratios = feature_match(U, V, ground_truth_mechanisms(_target_model(model)))
        rows += feature_match_rows(cosines, ratios)
    if IDENTITY_LAYER in model.module_names:
        rows += identity_rows(ci, config)
    return rows


def identity_rows(ci: EvaluationCI, config: EvalConfig) -> list[Row]:
    """Over the identity layer's alive subcomponents (alive on probes or random inputs), the least
    and the mean fraction of non-empty random inputs on which one has CI >= `diag_min`; informative.
    None where no subcomponent is alive, no random input is non-empty, or the inputs were not kept.
    Reads the identity layer's CI, (n_features, C) and (n_random, C), and the random inputs,
    (n_random, n_features)."""
    if ci.random_inputs is None:
        return []
    probe_ci, random_ci = ci.probes[IDENTITY_LAYER], ci.random[IDENTITY_LAYER]
    alive = alive_mask(torch.cat([probe_ci, random_ci]), config.alive_threshold)
    fractions = active_fraction(random_ci, ci.random_inputs, config.diag_min)[alive]
    if fractions.numel() == 0 or fractions.isnan().any():
        return []
    return [
        (IDENTITY_LAYER, "ci_active_fraction_min", fractions.min().item(), "fraction"),
        (IDENTITY_LAYER, "ci_active_fraction_mean", fractions.mean().item(), "fraction"),
    ]
