"""Stage `spd report`: docs/results.md, from the committed run summaries alone."""

from __future__ import annotations

from pathlib import Path

from spd.config import ConfigError, load_params
from spd.io import atomic_write
from spd.pipeline.log import log


def report(params_path: Path, metrics_root: Path, out: Path) -> None:
    """Writes the results report of the summaries under `metrics_root`, against the parameter
    file `params_path`'s settings, to `out`."""
    from spd.record import results_report

    if not metrics_root.is_dir():
        raise ConfigError(f"--metrics-root {metrics_root}: no such folder")
    text = results_report(load_params(params_path), metrics_root)
    atomic_write(out, lambda tmp: tmp.write_text(text))
    log(f"results report saved to {out}")
