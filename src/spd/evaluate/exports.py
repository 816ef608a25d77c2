"""Tidy tables of what the figures draw: CI on the one-hot probes, and target vs component weights."""

from __future__ import annotations

import pandas as pd
import torch

from spd.decomp.component_model import ComponentModel
from spd.decomp.components import subcomponent_weights
from spd.evaluate.causal_importance_metrics import causal_importances_on


def ci_probe_table(
    model: ComponentModel, n_features: int, probe_value: float, alpha: float
) -> pd.DataFrame:
    """One row per layer x probe (feature) x subcomponent: the CI on probe_value * e_feature."""
    device = next(model.parameters()).device
    probe_ci = causal_importances_on(
        model, probe_value * torch.eye(n_features, device=device), alpha
    )
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


def _matrix_rows(layer: str, kind: str, subcomponent: int, matrix: torch.Tensor) -> pd.DataFrame:
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
    """Target weight (kind 'target', subcomponent -1) and every rank-one piece, per untied layer."""
    frames = []
    for layer in model.module_names:
        if layer in model.target.tied_modules:
            continue
        frames.append(_matrix_rows(layer, "target", -1, model.target_weight(layer)))
        for c, piece in enumerate(subcomponent_weights(*model.factors(layer))):
            frames.append(_matrix_rows(layer, "subcomponent", c, piece))
    return pd.concat(frames, ignore_index=True)
