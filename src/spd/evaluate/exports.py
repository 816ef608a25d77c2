"""Tidy tables of what the figures draw: CI on the one-hot probes, CI histograms, and target vs\ncomponent weights."""

from __future__ import annotations

import pandas as pd
import torch
from torch import Tensor

from spd.decomp.component_model import ComponentModel
from spd.decomp.components import subcomponent_weights


def ci_probe_table(probe_ci: dict[str, Tensor]) -> pd.DataFrame:
    """One row per layer x probe (feature) x subcomponent: the CI on that feature's one-hot probe.
    probe_ci: per layer, (n_probes, C)."""
    frames = []
    for layer, ci in probe_ci.items():
        probe, subcomponent = torch.meshgrid(
            torch.arange(ci.shape[0]), torch.arange(ci.shape[1]), indexing="ij"
        )
        frames.append(
            pd.DataFrame(
                {
                    "layer": layer,
                    "probe": probe.flatten().numpy(),
                    "subcomponent": subcomponent.flatten().numpy(),
                    "ci": ci.flatten().cpu().numpy(),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def ci_histogram_table(random_ci: dict[str, Tensor], n_bins: int = 50) -> pd.DataFrame:
    """Per layer, counts of the CI values (every example x subcomponent of the random batch) in
    `n_bins` equal bins over [0, 1]; the last bin includes 1. random_ci: per layer,
    (n_random, C)."""
    edges = torch.linspace(0.0, 1.0, n_bins + 1)
    frames = []
    for layer, ci in random_ci.items():
        bins = (ci.flatten().cpu() * n_bins).long().clamp(0, n_bins - 1)
        counts = torch.bincount(bins, minlength=n_bins)
        frames.append(
            pd.DataFrame(
                {
                    "layer": layer,
                    "bin_left": edges[:-1].numpy(),
                    "bin_right": edges[1:].numpy(),
                    "count": counts.numpy(),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def _matrix_rows(layer: str, kind: str, subcomponent: int, matrix: torch.Tensor) -> pd.DataFrame:
    """One row per entry (row, col) of a 2-D matrix, e.g. a (d_out, d_in) weight or piece."""
    row, col = torch.meshgrid(
        torch.arange(matrix.shape[0]), torch.arange(matrix.shape[1]), indexing="ij"
    )
    return pd.DataFrame(
        {
            "layer": layer,
            "kind": kind,
            "subcomponent": subcomponent,
            "row": row.flatten().numpy(),
            "col": col.flatten().numpy(),
            "value": matrix.flatten().cpu().numpy(),
        }
    )


@torch.no_grad()
def weight_table(model: ComponentModel) -> pd.DataFrame:
    """Target weight (kind 'target', subcomponent -1) and every rank-one piece, per untied layer;
    each a (d_out, d_in) matrix, one row per entry."""
    frames = []
    for layer in model.module_names:
        if layer in model.target.tied_modules:
            continue
        frames.append(_matrix_rows(layer, "target", -1, model.target_weight(layer)))
        for c, piece in enumerate(subcomponent_weights(*model.factors(layer))):
            frames.append(_matrix_rows(layer, "subcomponent", c, piece))
    return pd.concat(frames, ignore_index=True)


@torch.no_grad()
def ci_curve_table(
    model: ComponentModel,
    n_features: int,
    leaky_alpha: float,
    n_points: int = 21,
    floor: float = 0.01,
) -> pd.DataFrame:
    """CI against the input value of one feature (x_j from 0 to 1 in `n_points` steps, every other
    feature 0): one row per layer x subcomponent x feature x value, for the subcomponents whose CI
    reaches `floor` somewhere on the layer's curves (the others stay at zero)."""
    from spd.evaluate.causal_importance_metrics import causal_importances_on

    device = next(model.parameters()).device
    values = torch.linspace(0.0, 1.0, n_points, device=device)
    # inputs[j * n_points + i] = values[i] * e_j
    inputs = (torch.eye(n_features, device=device)[:, None, :] * values[None, :, None]).reshape(
        n_features * n_points, n_features
    )
    frames = []
    for layer, ci in causal_importances_on(model, inputs, leaky_alpha).items():
        curves = ci.reshape(n_features, n_points, -1).cpu()  # feature, value, subcomponent
        kept = torch.nonzero(curves.amax(dim=(0, 1)) >= floor).flatten()
        feature, point, sub = torch.meshgrid(
            torch.arange(n_features), torch.arange(n_points), kept, indexing="ij"
        )
        frames.append(
            pd.DataFrame(
                {
                    "layer": layer,
                    "subcomponent": sub.flatten().numpy(),
                    "feature": feature.flatten().numpy(),
                    "x": values.cpu()[point.flatten()].numpy(),
                    "ci": curves[feature.flatten(), point.flatten(), sub.flatten()].numpy(),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)
