"""Family-independent metrics on causal importances: alive counts, CI-L0, CI-pattern errors."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from spd.config import EvalConfig, SPDConfig
from spd.decomp.component_model import ComponentModel


@torch.no_grad()
def causal_importances_on(model: ComponentModel, x: Tensor, alpha: float) -> dict[str, Tensor]:
    """Lower-leaky CI clipped to [0, 1], (batch, C) per decomposed module, on x: (batch,
    n_features)."""
    _, layer_inputs = model.forward_recording_inputs(x)
    lower, _ = model.causal_importances(layer_inputs, alpha)
    return {name: ci.clamp(0.0, 1.0) for name, ci in lower.items()}


def alive_mask(causal_importances: Tensor, threshold: float) -> Tensor:
    """(C,) bool: CI above `threshold` on at least one input. causal_importances: (batch, C)."""
    return (causal_importances > threshold).any(dim=0)


def ci_l0(causal_importances: Tensor, threshold: float) -> float:
    """Mean over the batch of the number of subcomponents with CI above `threshold`.
    causal_importances: (batch, C)."""
    return (causal_importances > threshold).sum(dim=-1).float().mean().item()


Row = tuple[str, str, float, str]  # layer, metric, value, unit

# The three ways a probe's CI misses a permuted diagonal (metric "ci_errors_<kind>").
CI_ERROR_KINDS = ("weak_diagonal", "off_diagonal", "shared")


def ci_pattern_error_kinds(probe_ci: Tensor, diag_min: float, offdiag_max: float) -> dict[str, int]:
    """Errors of a (n_probes, C) CI matrix against a permuted diagonal, by kind.

    Each probe is matched to its highest-CI subcomponent. 'weak_diagonal': a matched CI below
    `diag_min`; 'off_diagonal': any other entry above `offdiag_max`; 'shared': one for each extra
    probe matched to a subcomponent another probe is matched to (merged features).
    """
    matched = probe_ci.argmax(dim=1)
    rows = torch.arange(probe_ci.shape[0])
    diagonal = probe_ci[rows, matched]
    off_diagonal = probe_ci.clone()
    off_diagonal[rows, matched] = 0.0
    return {
        "weak_diagonal": int((diagonal < diag_min).sum()),
        "off_diagonal": int((off_diagonal > offdiag_max).sum()),
        "shared": matched.numel() - matched.unique().numel(),
    }


def ci_pattern_rows(layer: str, probe_ci: Tensor, config: EvalConfig) -> list[Row]:
    """'ci_pattern_errors' (the verdict's count: every kind) of one layer, then its count of each kind.
    probe_ci: (n_probes, C)."""
    kinds = ci_pattern_error_kinds(probe_ci, config.diag_min, config.offdiag_max)
    rows: list[Row] = [(layer, "ci_pattern_errors", sum(kinds.values()), "count")]
    return rows + [(layer, f"ci_errors_{kind}", count, "count") for kind, count in kinds.items()]


def densest_columns(probe_ci: Tensor, weak_max: float) -> Tensor:
    """Column indices of a (n_probes, C) CI matrix, densest first: by the number of probes with CI
    above `weak_max` (the public reference implementation's ordering), ties broken by CI mass.
    Returns (C,)."""
    by_mass = probe_ci.sum(dim=0).argsort(descending=True, stable=True)
    counts = (probe_ci > weak_max).sum(dim=0)[by_mass]
    return by_mass[counts.argsort(descending=True, stable=True)]


def dense_pattern_errors(probe_ci: Tensor, k: int, strong_min: float, weak_max: float) -> int:
    """Errors of a (n_probes, C) CI matrix against a dense block of k subcomponents.

    The k densest columns (`densest_columns`) should each reach `strong_min` on at least one probe
    (one error per column that never does); every other column should stay at or below
    `weak_max` on all probes (one error per entry above). The public reference implementation
    scores its residual-MLP W_out decompositions by the second part; it is weaker than "active on
    every probe".
    """
    order = densest_columns(probe_ci, weak_max)
    block, rest = probe_ci[:, order[:k]], probe_ci[:, order[k:]]
    never_strong = int((~(block >= strong_min).any(dim=0)).sum())
    return never_strong + int((rest > weak_max).sum())


def mean_active_per_probe(probe_ci: Tensor, threshold: float, *, inclusive: bool) -> float:
    """Mean over the probes of the number of subcomponents with CI above `threshold` (at or above
    it when `inclusive`). probe_ci: (n_probes, C)."""
    active = probe_ci >= threshold if inclusive else probe_ci > threshold
    return active.sum(dim=1).float().mean().item()


def active_fraction(causal_importances: Tensor, inputs: Tensor, threshold: float) -> Tensor:
    """(C,): per subcomponent, the fraction of the rows of `causal_importances` (batch, C) with CI
    at or above `threshold`, among those whose row of `inputs` (batch, ...) is non-empty (has a
    nonzero entry). NaN where there is no such row."""
    nonempty = inputs.flatten(1).ne(0).any(dim=1)
    return (causal_importances[nonempty] >= threshold).float().mean(dim=0)


@dataclass(frozen=True)
class EvaluationCI:
    """Clipped lower-leaky CI per layer on the one-hot probes and on the random batch (docs/method.md);
    `random_inputs`, the random batch itself (None where not kept: the metrics that need it, such
    as the identity-layer report, are then left out).

    probes: per module name, (n_probes, C), n_probes = n_features; random: per module name,
    (n_random, C); random_inputs: (n_random, n_features).
    """

    probes: dict[str, Tensor]
    random: dict[str, Tensor]
    random_inputs: Tensor | None = None


def evaluation_ci(
    model: ComponentModel, n_features: int, spd_config: SPDConfig, config: EvalConfig
) -> EvaluationCI:
    """CI on the n_features one-hot probes (probe_value e_j) and on `config.n_random` fresh
    inputs drawn with `config.seed`: per module name, (n_features, C) and (n_random, C)."""
    device = next(model.parameters()).device
    probes = config.probe_value * torch.eye(n_features, device=device)
    generator = torch.Generator(device=device).manual_seed(config.seed)
    random_batch = model.target.sample_batch(config.n_random, generator)
    return EvaluationCI(
        probes=causal_importances_on(model, probes, spd_config.leaky_alpha),
        random=causal_importances_on(model, random_batch, spd_config.leaky_alpha),
        random_inputs=random_batch,
    )
