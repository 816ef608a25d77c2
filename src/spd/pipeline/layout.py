"""A run folder's layout: the file each stage writes into the folder of one experiment x seed,
each name defined here once. Stages, figures and tests reach the files through `RunFolder`; the
Snakemake rules build their paths from these names, and tests check dvc.yaml's against them.

A target folder (data/targets/<experiment>/) holds the target files alone; `spd run` writes
every stage's files into one folder.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from spd.config import ConfigError

TARGET_FILE = "target.pt"
TARGET_STATE_FILE = "target.state.pt"  # in-progress target training; removed when it ends
DECOMPOSITION_FILE = "decomposition.pt"
DECOMPOSITION_STATE_FILE = "decomposition.state.pt"  # likewise for the decomposition
LOSSES_FILE = "losses.parquet"
RUN_CONFIG_FILE = "config.yaml"  # the experiment's config as the run resolved it, overrides applied
METRICS_FILE = "metrics.parquet"
CI_PROBES_FILE = "ci_probes.parquet"
CI_HISTOGRAM_FILE = "ci_histogram.parquet"
RUN_RECORD_FILE = "run.json"  # the run's settings, provenance and verdict, written by evaluate

TRAIN_TARGET_OUTPUTS = (TARGET_FILE,)
DECOMPOSE_OUTPUTS = (DECOMPOSITION_FILE, LOSSES_FILE, RUN_CONFIG_FILE)
EVALUATE_OUTPUTS = (METRICS_FILE, RUN_RECORD_FILE)
# Tables every SPD run's evaluation writes besides EVALUATE_OUTPUTS, whatever its family; a family
# adds its own (`Family.evaluation_tables`).
COMMON_SPD_TABLES = (CI_PROBES_FILE, CI_HISTOGRAM_FILE)


@dataclass(frozen=True)
class RunFolder:
    """The files of one run folder, by what they hold."""

    path: Path

    @property
    def target(self) -> Path:
        return self.path / TARGET_FILE

    @property
    def target_state(self) -> Path:
        return self.path / TARGET_STATE_FILE

    @property
    def decomposition(self) -> Path:
        return self.path / DECOMPOSITION_FILE

    @property
    def decomposition_state(self) -> Path:
        return self.path / DECOMPOSITION_STATE_FILE

    @property
    def losses(self) -> Path:
        return self.path / LOSSES_FILE

    @property
    def config(self) -> Path:
        return self.path / RUN_CONFIG_FILE

    @property
    def metrics(self) -> Path:
        return self.path / METRICS_FILE

    @property
    def ci_probes(self) -> Path:
        return self.path / CI_PROBES_FILE

    @property
    def ci_histogram(self) -> Path:
        return self.path / CI_HISTOGRAM_FILE

    @property
    def record(self) -> Path:
        return self.path / RUN_RECORD_FILE

    def table(self, name: str) -> Path:
        """A table by file name, e.g. one a family names in `Family.evaluation_tables`."""
        return self.path / name


def run_tables(runs: Sequence[Path], names: Sequence[str]) -> list[list[Path]]:
    """Each run folder's tables `names`, every one checked to exist before anything is read: a
    missing one is a ConfigError naming it."""
    tables = []
    for run in runs:
        paths = [RunFolder(run).table(name) for name in names]
        for path in paths:
            if not path.is_file():
                raise ConfigError(f"run folder: {path}: file not found")
        tables.append(paths)
    return tables
