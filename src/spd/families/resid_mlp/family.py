"""The residual MLP as a `Family`: binds its `model`, `metrics`, `verdict` and `figures`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from spd.config import ResidMLPTargetConfig
from spd.families.base import Family
from spd.pipeline.layout import CI_PROBES_FILE, LOSSES_FILE, METRICS_FILE

NEURON_CONTRIBUTIONS_FILE = "neuron_contributions.parquet"


class ResidMLPFamily(Family):
    name = "resid_mlp"
    config_model = ResidMLPTargetConfig
    evaluation_tables = (NEURON_CONTRIBUTIONS_FILE,)
    figure_tables = (
        METRICS_FILE,
        CI_PROBES_FILE,
        NEURON_CONTRIBUTIONS_FILE,
        LOSSES_FILE,
    )
    report_columns = (
        "live W_in / W_out",
        "CI errors W_in",
        "W_in neuron corr. / slope",
        "W_out per probe, CI >= 0.1 / 0.9",
    )
    report_section = "Residual MLPs"
    report_section_columns = (
        "live W_in / W_out, per layer",
        "CI errors W_in, per layer",
        "W_in neuron contributions: correlation / slope, per layer",
        "W_out subcomponents per probe at CI >= 0.1 / 0.9, per layer",
    )

    def build_model(self, config):
        from spd.families.resid_mlp import model as resid_mlp

        return resid_mlp.build_model(config)

    def batch_sampler(self, config):
        from spd.families.resid_mlp import model as resid_mlp

        return resid_mlp.batch_sampler(config)

    def train(self, config, device, log, state_file, checkpoint_every):
        from spd.families.resid_mlp import model as resid_mlp

        return resid_mlp.train(config, device, log, state_file, checkpoint_every)

    def as_target(self, model, config):
        from spd.families.resid_mlp import model as resid_mlp

        return resid_mlp.as_target(model, config)

    def missing_features(self, model, config):
        from spd.families.resid_mlp import model as resid_mlp

        return resid_mlp.missing_features(model, config)

    def metric_rows(self, model, ci, eval_config):
        from spd.families.resid_mlp import metrics as resid_mlp

        return resid_mlp.metric_rows(model, ci, eval_config)

    def apd_metric_rows(self, model, eval_config):
        from spd.families.resid_mlp import metrics as resid_mlp

        return resid_mlp.apd_metric_rows(model, eval_config)

    def recovery_failures(self, rows, config):
        from spd.families.resid_mlp.verdict import recovery_failures

        return recovery_failures(rows, config)

    def expected_alive(self, config):
        from spd.families.resid_mlp.verdict import expected_alive

        return expected_alive(config)

    def tables(self, model, config, decomposition):
        from spd.families.resid_mlp.metrics import neuron_contribution_table

        return {NEURON_CONTRIBUTIONS_FILE: neuron_contribution_table(model)}

    def write_figures(self, runs, out: Path, table1) -> bool:
        from spd.families.resid_mlp.figures import read_resid_run, write_resid_mlp_figures

        write_resid_mlp_figures([read_resid_run(*paths) for paths in runs], out)
        return True

    def report_cells(self, summary: Any) -> list[str]:
        """Per layer: live W_in / W_out subcomponents, W_in CI-pattern errors, W_in neuron
        contributions (correlation / slope), W_out subcomponents per probe at CI >= 0.1 / 0.9."""
        from spd.record import count_cell, number_cell

        layers = sorted(
            {layer.rsplit(".", 1)[0] for layer in summary.data if layer.startswith("layers.")}
        )
        w_in = {layer: f"{layer}.mlp_in" for layer in layers}
        w_out = {layer: f"{layer}.mlp_out" for layer in layers}
        alive = ", ".join(
            f"{count_cell(summary.value(w_in[layer], 'alive_subcomponents'))} / "
            f"{count_cell(summary.value(w_out[layer], 'alive_subcomponents'))}"
            for layer in layers
        )
        errors = ", ".join(
            count_cell(summary.value(w_in[layer], "ci_pattern_errors")) for layer in layers
        )
        neurons = ", ".join(
            f"{number_cell(summary.value(w_in[layer], 'neuron_contribution_corr'))} / "
            f"{number_cell(summary.value(w_in[layer], 'neuron_contribution_slope'), 3)}"
            for layer in layers
        )
        per_probe = ", ".join(
            f"{number_cell(summary.value(w_out[layer], 'ci_per_probe@0.1'), 1)} / "
            f"{number_cell(summary.value(w_out[layer], 'ci_per_probe@0.9'), 1)}"
            for layer in layers
        )
        return [alive or "-", errors or "-", neurons or "-", per_probe or "-"]

    def target_bytes(self, config):
        # weights with their gradients and AdamW moments, plus float copies of a batch row's activations
        layers = config.n_layers * config.d_embed * config.d_mlp
        weights = 2 * config.n_features * config.d_embed + 2 * layers
        row = 2 * config.n_features + config.n_layers * (2 * config.d_embed + config.d_mlp)
        return 16 * weights + 32 * row * config.batch_size

    def decomposition_size(self, config):
        layers = 2 * config.n_layers
        weights = 2 * config.d_embed * (config.n_layers * config.d_mlp + config.n_features)
        return layers, weights


RESID_MLP = ResidMLPFamily()
