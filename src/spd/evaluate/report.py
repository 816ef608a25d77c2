"""One experiment's evaluation: every metric as a tidy row (layer, metric, value, unit)."""

from __future__ import annotations

import pandas as pd
import torch

from spd.config import EvalConfig, TargetConfig
from spd.decomp.component_model import ComponentModel
from spd.evaluate.causal_importance_metrics import EvaluationCI, Row, alive_mask, ci_l0
from spd.families.registry import family
from spd.provenance import code_version


def metric_rows(
    model: ComponentModel, ci: EvaluationCI, target_config: TargetConfig, config: EvalConfig
) -> list[dict[str, object]]:
    """Alive counts and CI-L0 for every layer, then the target family's ground-truth metrics."""
    probe_ci, random_ci = ci.probes, ci.random
    rows: list[Row] = []
    for name in model.module_names:
        alive = alive_mask(torch.cat([probe_ci[name], random_ci[name]]), config.alive_threshold)
        rows.append((name, "alive_subcomponents", alive.sum().item(), "count"))
        for threshold in config.l0_thresholds:
            rows.append(
                (
                    name,
                    f"ci_l0@{threshold:g}",
                    ci_l0(random_ci[name], threshold),
                    "subcomponents/example",
                )
            )
    rows += family(target_config).metric_rows(model, ci, config)
    return [
        {"layer": layer, "metric": metric, "value": float(value), "unit": unit}
        for layer, metric, value, unit in rows
    ]


def metrics_table(
    rows: list[dict[str, object]],
    experiment: str,
    seed: int,
    config_hash: str,
    family: str,
    method: str,
) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    frame.insert(0, "experiment", experiment)
    frame.insert(1, "seed", seed)
    frame.insert(2, "family", family)
    frame.insert(3, "method", method)
    frame["config_hash"] = config_hash
    frame["code_version"] = code_version()
    return frame
