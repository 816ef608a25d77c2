"""One experiment's evaluation: every metric as a tidy row (layer, metric, value, unit)."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pandas as pd
import torch
from torch import Tensor

from spd.config import EvalConfig, SPDConfig
from spd.decomp.component_model import ComponentModel
from spd.evaluate.causal_importance_metrics import (
    alive_mask,
    causal_importances_on,
    ci_l0,
    ci_pattern_errors,
)
from spd.evaluate.tms import mmcs_ml2r
from spd.targets import tms

# Layers whose subcomponents should each fire for exactly one one-hot feature probe.
_FEATURE_ALIGNED_LAYERS = ("linear1", "linear2")


def code_version() -> str:
    """`git describe` of the source tree when it is a checkout, else the package version."""
    source_dir = Path(__file__).resolve().parent
    try:
        described = subprocess.run(
            ["git", "describe", "--always", "--dirty", "--tags"],
            cwd=source_dir, capture_output=True, text=True, check=True, timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        described = ""
    try:
        package = version("spd-pipeline")
    except PackageNotFoundError:
        package = "unknown"
    return f"{package}+{described}" if described else package


@dataclass(frozen=True)
class EvaluationCI:
    """Clipped lower-leaky CI per layer on the one-hot probes and on the random batch (spec 7)."""

    probes: dict[str, Tensor]
    random: dict[str, Tensor]


def evaluation_ci(
    model: ComponentModel, n_features: int, spd_config: SPDConfig, config: EvalConfig
) -> EvaluationCI:
    device = next(model.parameters()).device
    probes = config.probe_value * torch.eye(n_features, device=device)
    generator = torch.Generator(device=device).manual_seed(config.seed)
    random_batch = model.target.sample_batch(config.n_random, generator)
    return EvaluationCI(
        probes=causal_importances_on(model, probes, spd_config.leaky_alpha),
        random=causal_importances_on(model, random_batch, spd_config.leaky_alpha),
    )


def metric_rows(model: ComponentModel, ci: EvaluationCI, config: EvalConfig) -> list[dict[str, object]]:
    probe_ci, random_ci = ci.probes, ci.random
    rows: list[dict[str, object]] = []

    def add(layer: str, metric: str, value: float, unit: str) -> None:
        rows.append({"layer": layer, "metric": metric, "value": float(value), "unit": unit})

    for name in model.module_names:
        alive = alive_mask(torch.cat([probe_ci[name], random_ci[name]]), config.alive_threshold)
        add(name, "alive_subcomponents", alive.sum().item(), "count")
        for threshold in config.l0_thresholds:
            add(name, f"ci_l0@{threshold:g}", ci_l0(random_ci[name], threshold), "subcomponents/example")
        if name in _FEATURE_ALIGNED_LAYERS:
            errors = ci_pattern_errors(probe_ci[name], config.diag_min, config.offdiag_max)
            add(name, "ci_pattern_errors", errors, "count")

    if "linear1" in model.module_names:  # the TMS ground truth: columns of linear1's W
        with torch.no_grad():
            U, V = model.factors("linear1")
            mmcs, ml2r = mmcs_ml2r(U, V, tms.ground_truth_mechanisms(model.target.model))
        add("linear1", "mmcs", mmcs, "cosine")
        add("linear1", "ml2r", ml2r, "ratio")
    return rows


def metrics_table(
    rows: list[dict[str, object]], experiment: str, seed: int, config_hash: str
) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    frame.insert(0, "experiment", experiment)
    frame.insert(1, "seed", seed)
    frame["config_hash"] = config_hash
    frame["code_version"] = code_version()
    return frame
