"""Stage `spd summary`: an evaluated run's small metric JSON and loss CSV (for `dvc metrics`,
`dvc plots` and the committed record)."""

from __future__ import annotations

import json
from pathlib import Path

from spd.config import ConfigError
from spd.io import atomic_write, read_parquet
from spd.pipeline.layout import LOSSES_FILE, METRICS_FILE, RUN_RECORD_FILE, RunFolder, run_tables
from spd.pipeline.log import log


def summary(run: Path, metrics_json: Path, losses_csv: Path) -> None:
    """Writes the evaluated run `run`'s metric summary, with its record's settings, provenance
    and verdict, to `metrics_json`, and its loss curve to `losses_csv`."""
    from spd.evaluate.run_record import read_run_record
    from spd.evaluate.summary import loss_curve, metric_summary

    folder = RunFolder(run)
    if folder.metrics.is_file() and not folder.record.is_file():
        raise ConfigError(
            f"{folder.record}: not found (the run was evaluated before runs kept a "
            "record): evaluate it again with `spd evaluate`, or rerun its snakemake target"
        )
    names = [METRICS_FILE, LOSSES_FILE, RUN_RECORD_FILE]
    metrics_path, losses_path, record_path = run_tables([run], names)[0]
    metrics, losses = read_parquet(metrics_path), read_parquet(losses_path)
    run_summary = metric_summary(metrics, losses, read_run_record(record_path))
    text = json.dumps(run_summary, indent=2, sort_keys=True) + "\n"
    atomic_write(metrics_json, lambda tmp: tmp.write_text(text))
    atomic_write(losses_csv, lambda tmp: loss_curve(losses).to_csv(tmp, index=False))
    log(f"summary saved to {metrics_json} and {losses_csv}")
