"""Tidy tables of what the figures draw: CI on the one-hot probes, CI histograms, and target vs\ncomponent weights."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd
import torch
from torch import Tensor

from spd.decomp.component_model import ComponentModel
from spd.decomp.components import subcomponent_weights


def long_table(
    values: Mapping[str, Tensor],
    dims: Sequence[str],
    constants: Mapping[str, object] | None = None,
) -> pd.DataFrame:
    """One row per entry of the tensors in `values`, all of one shape with one name in `dims` per
    dimension (e.g. (n_probes, C) and ("probe", "subcomponent")), in row-major order. Columns: the
    `constants` (one value each, e.g. the layer), the index along each dimension (int64), then
    each tensor's entries (its dtype), each group in the order given."""
    constants = {} if constants is None else constants
    names = [*constants, *dims, *values]
    if len(set(names)) != len(names):
        raise ValueError(f"column names repeat: {names}")
    shapes = {tuple(tensor.shape) for tensor in values.values()}
    if len(shapes) != 1 or len(shape := next(iter(shapes))) != len(dims):
        raise ValueError(f"values of shapes {sorted(shapes)} for dimensions {list(dims)}")
    indices = torch.meshgrid(*(torch.arange(n) for n in shape), indexing="ij")
    return pd.DataFrame(
        {
            **constants,
            **{dim: index.flatten().numpy() for dim, index in zip(dims, indices, strict=True)},
            **{name: tensor.flatten().cpu().numpy() for name, tensor in values.items()},
        }
    )


def ci_probe_table(probe_ci: dict[str, Tensor]) -> pd.DataFrame:
    """One row per layer x probe (feature) x subcomponent: the CI on that feature's one-hot probe.
    probe_ci: per layer, (n_probes, C)."""
    frames = [
        long_table({"ci": ci}, ("probe", "subcomponent"), {"layer": layer})
        for layer, ci in probe_ci.items()
    ]
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
    constants = {"layer": layer, "kind": kind, "subcomponent": subcomponent}
    return long_table({"value": matrix}, ("row", "col"), constants)


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
        frame = long_table(
            {"ci": curves[:, :, kept]}, ("feature", "point", "kept"), {"layer": layer}
        )
        frame["subcomponent"] = kept.numpy()[frame["kept"].to_numpy()]
        frame["x"] = values.cpu().numpy()[frame["point"].to_numpy()]
        frames.append(frame[["layer", "subcomponent", "feature", "x", "ci"]])
    return pd.concat(frames, ignore_index=True)
