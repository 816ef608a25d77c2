"""Toy Models of Superposition as a `Family`: binds its `model`, `metrics`, `verdict` and
`figures`."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from spd.config import TMSTargetConfig
from spd.families.base import Family
from spd.pipeline.layout import CI_HISTOGRAM_FILE, CI_PROBES_FILE, LOSSES_FILE, METRICS_FILE

WEIGHTS_FILE = "weights.parquet"
CI_CURVES_FILE = "ci_curves.parquet"


class TMSFamily(Family):
    name = "tms"
    config_model = TMSTargetConfig
    evaluation_tables = (WEIGHTS_FILE, CI_CURVES_FILE)
    # read_run finds CI_CURVES_FILE (absent from runs evaluated before it) beside these
    figure_tables = (
        METRICS_FILE,
        CI_PROBES_FILE,
        CI_HISTOGRAM_FILE,
        WEIGHTS_FILE,
        LOSSES_FILE,
    )
    report_columns = (
        "MMCS",
        "ML2R",
        "live (l1 / l2 / id)",
        "live on probes (l1 / l2 / id)",
        "CI errors (l1 / l2)",
    )
    feature_matched = True

    def build_model(self, config):
        from spd.families.tms import model as tms

        return tms.build_model(config)

    def batch_sampler(self, config):
        from spd.families.tms import model as tms

        return tms.batch_sampler(config)

    def train(self, config, device, log, state_file, checkpoint_every):
        from spd.families.tms import model as tms

        return tms.train(config, device, log, state_file, checkpoint_every)

    def as_target(self, model, config):
        from spd.families.tms import model as tms

        return tms.as_target(model, config)

    def missing_features(self, model, config):
        from spd.families.tms import model as tms

        return tms.missing_features(model, config)

    def metric_rows(self, model, ci, eval_config):
        from spd.families.tms import metrics as tms

        return tms.metric_rows(model, ci, eval_config)

    def apd_metric_rows(self, model, eval_config):
        from spd.families.tms import metrics as tms

        return tms.apd_metric_rows(model)

    def recovery_failures(self, rows, config):
        from spd.families.tms.verdict import recovery_failures

        return recovery_failures(rows, config)

    def expected_alive(self, config):
        from spd.families.tms.verdict import expected_alive

        return expected_alive(config)

    def tables(self, model, config, decomposition):
        from spd.evaluate.exports import ci_curve_table, weight_table

        return {
            WEIGHTS_FILE: weight_table(model),
            CI_CURVES_FILE: ci_curve_table(model, config.n_features, decomposition.leaky_alpha),
        }

    def write_figures(self, runs, out: Path, table1) -> bool:
        from spd.families.tms.figures import read_run, write_tms_figures

        write_tms_figures([read_run(*paths) for paths in runs], out, table1)
        return True

    def report_cells(self, summary: Any) -> list[str]:
        """MMCS and ML2R (± over features), live subcomponents per layer (on probes and random
        inputs; on the probes alone, which older summaries lack) and CI-pattern errors per
        layer; '-' where the summary has none of a column's counts (APD has no CI)."""
        from spd.record import count_cell, with_feature_spread

        layers = ["linear1", "linear2"] + (["hidden"] if "hidden" in summary.data else [])

        def per_layer(metric: str, layers: list[str] = layers) -> str:
            counts = [summary.value(layer, metric) for layer in layers]
            return (
                "-" if all(math.isnan(c) for c in counts) else " / ".join(map(count_cell, counts))
            )

        return [
            with_feature_spread(summary, "mmcs"),
            with_feature_spread(summary, "ml2r"),
            per_layer("alive_subcomponents"),
            per_layer("alive_on_probes"),
            per_layer("ci_pattern_errors", ["linear1", "linear2"]),
        ]

    def target_bytes(self, config):
        # weights with their gradients and AdamW moments, plus float copies of a batch row's activations
        weights = (
            2 * config.n_features * config.d_hidden + config.identity_layer * config.d_hidden**2
        )
        row = 2 * config.n_features + 2 * config.d_hidden
        return 16 * weights + 32 * row * config.batch_size

    def decomposition_size(self, config):
        return 2 + int(config.identity_layer), 0


TMS = TMSFamily()
