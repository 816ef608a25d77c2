"""Stage `spd evaluate`: a decomposition scored against its target's ground truth."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import yaml

from spd.config import APDConfig, EvalConfig, ExperimentConfig, settings_hash
from spd.io import write_parquet
from spd.pipeline.layout import CI_HISTOGRAM_FILE, CI_PROBES_FILE, RunFolder
from spd.pipeline.log import log

if TYPE_CHECKING:
    import pandas as pd


def evaluate(
    config: ExperimentConfig, target_path: Path, decomposition_path: Path, out: Path, device: str
) -> Path:
    """Scores the decomposition at `decomposition_path` of the target at `target_path` (both
    checked to be `config`'s run, the run's config as `spd.pipeline.run_config.run_config`
    gives it) on `device`; writes the metrics, the family's tables and the run's record with its
    verdict into `out`, and returns the metrics' path."""
    from spd.checks import check_decomposition, check_fingerprint, check_target
    from spd.decomp.storage import load_decomposition
    from spd.evaluate.causal_importance_metrics import evaluation_ci
    from spd.evaluate.exports import ci_histogram_table, ci_probe_table
    from spd.evaluate.recovery import verdict
    from spd.evaluate.report import metric_rows, metrics_table
    from spd.evaluate.run_record import write_run_record
    from spd.families.registry import family
    from spd.targets.registry import load_target, missing_features

    folder = RunFolder(out)
    target, target_config, info = load_target(target_path, device)
    check_target(target_path, target_config, config)
    model, made, record = load_decomposition(decomposition_path, target)
    check_decomposition(decomposition_path, made, config)
    check_fingerprint(
        decomposition_path,
        cast(str | None, record.get("target_fingerprint")),
        str(info["fingerprint"]),
    )
    # The run's own settings (a --steps or --seed override included) identify its results.
    run_config = config.model_copy(update={"decomposition": made})
    run_hash = settings_hash(run_config)
    missing = missing_features(target.model, target_config)
    if isinstance(made, APDConfig):
        rows = _apd_rows(model, target_config, config.evaluation)
        family_tables: dict[str, pd.DataFrame] = {}
    else:
        from spd.decomp.component_model import ComponentModel

        assert isinstance(model, ComponentModel)  # an SPD config loads an SPD decomposition
        ci = evaluation_ci(model, target_config.n_features, made, config.evaluation)
        rows = metric_rows(model, ci, target_config, config.evaluation)
        # What the family's figures draw besides CIs (TMS weights, residual-MLP neuron contributions).
        family_tables = {
            CI_PROBES_FILE: ci_probe_table(ci.probes),
            CI_HISTOGRAM_FILE: ci_histogram_table(ci.random),
        }
        family_tables |= family(target_config).tables(model, target_config, made)
    metrics = metrics_table(
        rows, config.name, made.seed, run_hash, target_config.family, made.method
    )
    provenance = {"experiment": config.name, "seed": made.seed}
    for name, table in family_tables.items():
        write_parquet(table.assign(**provenance), folder.table(name))
    write_parquet(metrics, folder.metrics)
    summary = {
        f"{r['layer']}/{r['metric']}": round(float(cast(float, r["value"])), 4) for r in rows
    }
    log(yaml.safe_dump(summary, sort_keys=False).rstrip())
    outcome = verdict(rows, target_config, made.method, missing)
    write_run_record(folder.record, run_config, run_hash, info, record, outcome)
    log(f"[{config.name}] ground-truth recovery: {outcome.text}")
    log(f"[{config.name}] metrics saved to {folder.metrics}")
    return folder.metrics


def _apd_rows(model: Any, target_config: Any, evaluation: EvalConfig) -> list[dict[str, object]]:
    """APD has no causal importances: each family scores it its own way (TMS by MMCS and ML2R, the
    residual MLP by the neuron contributions of each feature's highest-attribution component)."""
    from spd.families.registry import family

    metric_rows = family(target_config).apd_metric_rows(model, evaluation)
    return [
        {"layer": layer, "metric": metric, "value": float(value), "unit": unit}
        for layer, metric, value, unit in metric_rows
    ]
