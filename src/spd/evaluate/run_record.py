"""A run folder's record (run.json): the settings the decomposition ran with, where it came from,
and its verdict, so that summaries, tables and reports read the run rather than params.yaml."""

from __future__ import annotations

import json
from pathlib import Path

from spd.config import ExperimentConfig
from spd.evaluate.recovery import Verdict
from spd.io import CheckpointError, atomic_write
from spd.provenance import code_version


def write_run_record(
    path: Path,
    config: ExperimentConfig,
    config_hash: str,
    target_info: dict[str, object],
    decomposition: dict[str, object],
    outcome: Verdict,
) -> None:
    record = {
        "experiment": config.name,
        "seed": config.decomposition.seed,
        "family": config.target.family,
        "method": config.decomposition.method,
        "config_hash": config_hash,
        "steps": config.decomposition.steps_trained,
        "config": config.model_dump(mode="json"),
        "target": {
            "fingerprint": target_info["fingerprint"],
            "seed_used": target_info.get("seed_used"),
        },
        "decomposition": decomposition,
        "evaluation_code_version": code_version(),
        "verdict": {
            "recovered": outcome.recovered,
            "failures": list(outcome.failures),
            "reason": outcome.reason,
            "text": outcome.text,
        },
    }
    text = json.dumps(record, indent=2, sort_keys=True) + "\n"
    atomic_write(path, lambda tmp: tmp.write_text(text))


def read_run_record(path: Path) -> dict[str, object]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise CheckpointError(
            f"{path}: unreadable run record ({error.__class__.__name__})"
        ) from None
