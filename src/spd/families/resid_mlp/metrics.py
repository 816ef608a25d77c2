"""Residual-MLP ground truth (docs/method.md): every feature has its own W_in mechanism (a diagonal CI
pattern on the one-hot probes); W_out acts as one dense mechanism (d_mlp dense columns of CI on
the probes, no subcomponent selective for a feature); neuron contributions of the SPD W_in match
the target's."""

from __future__ import annotations

from typing import cast

import einops
import pandas as pd
import torch

from spd.config import EvalConfig
from spd.decomp.apd import APDModel
from spd.decomp.component_model import ComponentModel
from spd.evaluate.causal_importance_metrics import (
    EvaluationCI,
    Row,
    alive_mask,
    ci_pattern_rows,
    dense_pattern_errors,
    mean_active_per_probe,
)
from spd.evaluate.exports import long_table
from spd.families.resid_mlp.model import ResidMLPModel, neuron_contributions


def _target_model(model: ComponentModel | APDModel) -> ResidMLPModel:
    """The residual-MLP target these metrics are computed on."""
    return cast(ResidMLPModel, model.target.model)


def pearson(a: torch.Tensor, b: torch.Tensor) -> float:
    """Pearson correlation of the entries of a and b, of one number of elements (e.g. two
    (n_features, d_mlp) neuron-contribution matrices)."""
    a, b = a.flatten() - a.mean(), b.flatten() - b.mean()
    return (a @ b / (a.norm() * b.norm()).clamp_min(1e-12)).item()


def slope_through_origin(target: torch.Tensor, fitted: torch.Tensor) -> float:
    """Least-squares slope of `fitted` against `target` with no intercept, sum(t f) / sum(t t): 1
    when SPD's contributions have the target's scale, below 1 when they shrink. No intercept,
    since a neuron that does not carry a feature contributes exactly 0 in both. `target` and
    `fitted`: one number of elements, e.g. (n_features, d_mlp) each."""
    t, f = target.flatten(), fitted.flatten()
    return (t @ f / (t @ t).clamp_min(1e-12)).item()


@torch.no_grad()
def spd_neuron_contributions(model: ComponentModel, layer: int) -> torch.Tensor:
    """(n_features, d_mlp): neuron contributions as the paper computes them for SPD. For feature i
    and each W_in subcomponent c, (U[:, c] V[c] W_E[:, i])_n * (W_E[:, i]^T W_out)_n with W_out
    SPD's own, the sum U V of its W_out subcomponents (the target's where W_out is not
    decomposed); feature i keeps the subcomponent whose largest contribution over the neurons is
    the largest."""
    target = _target_model(model)
    w_in, w_out = f"layers.{layer}.mlp_in", f"layers.{layer}.mlp_out"
    U, V = model.factors(w_in)  # (d_mlp, C), (C, d_embed)
    if w_out in model.module_names:
        U_out, V_out = model.factors(w_out)  # (d_embed, C), (C, d_mlp)
        W_out = U_out @ V_out
    else:
        W_out = model.target_weight(w_out)
    reads = einops.einsum(V, target.W_E, "c embed, embed feature -> feature c")
    per_subcomponent = einops.einsum(reads, U, "feature c, mlp c -> feature c mlp")
    write = einops.einsum(target.W_E, W_out, "embed feature, embed mlp -> feature mlp")
    per_subcomponent = per_subcomponent * write.unsqueeze(1)  # (n_features, C, d_mlp)
    best = per_subcomponent.amax(dim=-1).argmax(dim=-1)  # (n_features,)
    return per_subcomponent[torch.arange(len(best)), best]


@torch.no_grad()
def neuron_alignment(read_directions: torch.Tensor) -> float:
    """Mean over rows of V (C, d_mlp) of the |cosine| with the nearest neuron axis: 1 when each
    W_out subcomponent reads a single neuron; random directions average 0.36 at d_mlp = 50.
    read_directions: (n, d_mlp), any number n of rows (e.g. the live ones, V[alive])."""
    if read_directions.numel() == 0:
        return float("nan")
    cosines = read_directions.abs().amax(dim=1) / read_directions.norm(dim=1).clamp_min(1e-12)
    return cosines.mean().item()


def neuron_contribution_table(model: ComponentModel) -> pd.DataFrame:
    """One row per layer x feature x neuron: the target's and SPD's contribution."""
    frames = []
    for layer in range(len(_target_model(model).layers)):
        if f"layers.{layer}.mlp_in" not in model.module_names:
            continue
        target = neuron_contributions(_target_model(model), layer)
        spd = spd_neuron_contributions(model, layer)
        values = {"target": target, "spd": spd}  # (n_features, d_mlp) each
        frames.append(long_table(values, ("feature", "neuron"), {"layer": layer}))
    return pd.concat(frames, ignore_index=True)


def metric_rows(model: ComponentModel, ci: EvaluationCI, config: EvalConfig) -> list[Row]:
    """Per layer, W_in's CI pattern and neuron contributions, W_out's dense-columns scores, from
    the CI on the probes (per module name, (n_features, C)) and on the random batch."""
    rows: list[Row] = []
    for layer in range(len(_target_model(model).layers)):
        w_in, w_out = f"layers.{layer}.mlp_in", f"layers.{layer}.mlp_out"
        if w_in in model.module_names:
            rows += ci_pattern_rows(w_in, ci.probes[w_in], config)
            target = neuron_contributions(_target_model(model), layer)
            spd = spd_neuron_contributions(model, layer)
            rows.append((w_in, "neuron_contribution_corr", pearson(target, spd), "pearson r"))
            rows.append(
                (w_in, "neuron_contribution_slope", slope_through_origin(target, spd), "ratio")
            )
        if w_out in model.module_names:
            alive = alive_mask(
                torch.cat([ci.probes[w_out], ci.random[w_out]]), config.alive_threshold
            )
            active = ci.probes[w_out] >= config.diag_min  # (probes, C)
            on_every_probe = active.all(dim=0) & alive
            rows.append((w_out, "active_on_every_probe", on_every_probe.sum().item(), "count"))
            # How far from that: the share of (probe, live subcomponent) pairs with CI >= diag_min.
            coverage = active[:, alive].float().mean().item() if alive.any() else 0.0
            rows.append((w_out, "active_probe_fraction", coverage, "fraction"))
            d_mlp = model.target_weight(w_out).shape[1]
            errors = dense_pattern_errors(
                ci.probes[w_out], d_mlp, config.diag_min, config.offdiag_max
            )
            rows.append((w_out, "dense_pattern_errors", errors, "count"))
            # The co-activation: how many subcomponents are above 0.1, and at or above 0.9, per probe.
            for threshold, inclusive in ((config.offdiag_max, False), (config.diag_min, True)):
                count = mean_active_per_probe(ci.probes[w_out], threshold, inclusive=inclusive)
                rows.append((w_out, f"ci_per_probe@{threshold:g}", count, "subcomponents/probe"))
            _, V = model.factors(w_out)
            rows.append((w_out, "neuron_alignment", neuron_alignment(V[alive]), "cosine"))
    return rows


def apd_metric_rows(model: APDModel, config: EvalConfig) -> list[Row]:
    """APD has no causal importances: each feature's W_in mechanism is the component with the
    largest attribution on its one-hot probe. Scored by the neuron-contribution correlation per
    layer, and by how many distinct components the features pick (the ground truth: one each)."""
    target_model = _target_model(model)
    n_features = target_model.W_E.shape[1]
    probes = config.probe_value * torch.eye(n_features, device=target_model.W_E.device)
    attributions, _ = model.attributions(probes)
    best = attributions.argmax(dim=1)  # (n_features,)
    rows: list[Row] = [("all layers", "distinct_feature_components", len(best.unique()), "count")]
    with torch.no_grad():
        for layer in range(len(target_model.layers)):
            name = f"layers.{layer}.mlp_in"
            if name in model.module_names:
                pieces = model.component_weights(name)[best]  # (n_features, d_mlp, d_embed)
                apd = neuron_contributions(target_model, layer, W_in=pieces)
                correlation = pearson(neuron_contributions(target_model, layer), apd)
                rows.append((name, "neuron_contribution_corr", correlation, "pearson r"))
    return rows
