"""What a toy family provides to the pipeline. Code outside a family's own modules reaches a
family only through this interface, via `spd.families.registry.family`.

A family's target config is a pydantic model with a `family` field (a built-in family's name, or
the import path 'package.module:Object' of a user's own family) and an `n_features` field (the
evaluation probes one feature at a time). Everything below `as_target` has a default: a family
without ground truth gets CI figures and no verdict.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel

from spd.pipeline.layout import CI_PROBES_FILE, LOSSES_FILE, METRICS_FILE

if TYPE_CHECKING:
    import pandas as pd
    from torch import nn

    from spd.config import EvalConfig
    from spd.targets.base import BatchSampler, Target

# Tables the default CI pages read (`spd.figures.ci_pages`), in order.
DEFAULT_FIGURE_TABLES = (METRICS_FILE, CI_PROBES_FILE, LOSSES_FILE)

Rows = Iterable[Mapping[str, object]]
Row = tuple[str, str, float, str]  # (layer, metric, value, unit), as spd.evaluate's metric rows


class Family(ABC):
    """One toy family. Subclass it and set `name` and `config_model`."""

    name: ClassVar[str]
    """What its configs' `family` field says: a built-in name, or the family's import path."""
    config_model: ClassVar[type[BaseModel]]
    evaluation_tables: ClassVar[tuple[str, ...]] = ()
    """File names of the tables `tables` writes into an SPD run's folder."""
    figure_tables: ClassVar[tuple[str, ...]] = DEFAULT_FIGURE_TABLES
    """File names of the run tables `write_figures` reads, in its order."""
    report_columns: ClassVar[tuple[str, ...]] = ("live, per layer",)
    """Headers of `report_cells`, in the results report's sweep tables."""
    report_section: ClassVar[str | None] = None
    """Title of a results-report section listing the family's experiments; None: no section."""
    report_section_columns: ClassVar[tuple[str, ...]] = ()
    """Headers of `report_cells` in that section (the same cells, named for a per-layer list)."""
    feature_matched: ClassVar[bool] = False
    """True where its decompositions are scored by MMCS and ML2R of linear1 against the target's
    features (the paper's Table 1): its SPD experiments are then the main job's default (tms.pdf,
    Table 1, the seed tables) and its APD experiments are compared with SPD."""

    # The target model.

    @abstractmethod
    def build_model(self, config: Any) -> nn.Module:
        """The untrained target model (what the target checkpoint's state dict loads into)."""

    @abstractmethod
    def batch_sampler(self, config: Any) -> BatchSampler:
        """(batch_size, generator) -> a batch of the target's inputs, (batch_size, n_features)
        for the built-in families."""

    @abstractmethod
    def train(
        self,
        config: Any,
        device: str,
        log: Callable[[str], None],
        state_file: Path | None,
        checkpoint_every: int,
    ) -> tuple[nn.Module, dict[str, object]]:
        """The trained target and its info (at least 'seed_used')."""

    @abstractmethod
    def as_target(self, model: nn.Module, config: Any) -> Target:
        """What the decomposition sees: the model, its decomposed layers, its batches."""

    def missing_features(self, model: nn.Module, config: Any) -> list[int]:
        """Features the trained target does not represent; the run then gets no verdict."""
        return []

    # Ground truth: metric rows and the verdict.

    def metric_rows(self, model: Any, ci: Any, eval_config: EvalConfig) -> list[Row]:
        """The family's ground-truth metrics of an SPD decomposition (a ComponentModel), from its
        CIs (`spd.evaluate.causal_importance_metrics.EvaluationCI`), after the common ones."""
        return []

    def apd_metric_rows(self, model: Any, eval_config: EvalConfig) -> list[Row]:
        """The family's metrics of an APD decomposition."""
        return []

    def recovery_failures(self, rows: Rows, config: Any) -> list[str] | None:
        """Every recovery criterion the decomposition misses (empty: recovered); None where the
        family has no ground truth to give a verdict by."""
        return None

    def expected_alive(self, config: Any) -> dict[str, int]:
        """The ground truth's number of mechanisms per decomposed layer (none known: empty)."""
        return {}

    # What the evaluation writes besides metrics, and the figure page that reads it.

    def tables(self, model: Any, config: Any, decomposition: Any) -> dict[str, pd.DataFrame]:
        """The family's own tables of an SPD decomposition (of a target with settings `config`,
        made with `decomposition`'s), by file name (`evaluation_tables`)."""
        return {}

    def write_figures(
        self, runs: Sequence[Sequence[Path]], out: Path, table1: pd.DataFrame | None
    ) -> bool:
        """One page per run into the PDF `out`, each run given as its `figure_tables` paths; True.
        False: the family has no page of its own, and `spd figures` draws the default CI pages
        (`spd.figures.ci_pages`) from `DEFAULT_FIGURE_TABLES`."""
        return False

    # The results report and the scheduler's estimates.

    def report_cells(self, summary: Any) -> list[str]:
        """One run's cells under `report_columns`, from its summary (`spd.record.Summary`): by
        default the live subcomponents of every layer, 'a / b / ...'."""
        layers = [
            layer
            for layer, values in summary.data.items()
            if isinstance(values, dict) and "alive_subcomponents" in values
        ]
        return [
            " / ".join(str(int(summary.value(layer, "alive_subcomponents"))) for layer in layers)
            or "-"
        ]

    def target_bytes(self, config: Any) -> int:
        """A rough upper estimate of the target training's peak memory, checked against the
        machine's before any compute; 0 (no check) unless the family gives one."""
        return 0

    def decomposition_size(self, config: Any) -> tuple[int, int]:
        """(decomposed layers, target weights whose dense products a batch row costs), for the
        scheduler's runtime and memory estimates."""
        target = self.as_target(self.build_model(config), config)
        return len(target.decomposed_modules), 0
