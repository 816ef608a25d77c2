"""A residual-MLP decomposition's verdict: the recovery criteria of docs/method.md, "Recovery
criteria", read from its metric rows."""

from __future__ import annotations

from spd.config import ResidMLPTargetConfig
from spd.evaluate.recovery import Rows, ci_pattern_failures, metric_values

NEURON_CORRELATION_MIN = 0.95
W_OUT_ALIVE_TOLERANCE = 2  # live W_out subcomponents per layer: d_mlp +- 2


def recovery_failures(rows: Rows, target: ResidMLPTargetConfig) -> list[str]:
    """Per layer: n_features live W_in subcomponents with a diagonal CI pattern and neuron
    contributions correlated >= 0.95 with the target's; W_out d_mlp +- 2 live subcomponents and
    no dense-columns errors (its d_mlp densest subcomponents each reach CI 0.9 on some probe, the
    others stay at or below 0.1 on every probe)."""
    value = metric_values(rows)
    failures = []
    for layer in range(target.n_layers):
        w_in, w_out = f"layers.{layer}.mlp_in", f"layers.{layer}.mlp_out"
        if (w_in, "alive_subcomponents") in value:
            alive = int(value[(w_in, "alive_subcomponents")])
            if alive != target.n_features:
                failures.append(
                    f"{w_in}: {alive} alive subcomponents, expected {target.n_features}"
                )
            failures += ci_pattern_failures(value, w_in)
            correlation = value[(w_in, "neuron_contribution_corr")]
            if correlation < NEURON_CORRELATION_MIN:
                failures.append(
                    f"{w_in}: neuron-contribution correlation {correlation:.3f} < {NEURON_CORRELATION_MIN}"
                )
        if (w_out, "alive_subcomponents") in value:
            alive = int(value[(w_out, "alive_subcomponents")])
            if abs(alive - target.d_mlp) > W_OUT_ALIVE_TOLERANCE:
                failures.append(
                    f"{w_out}: {alive} alive subcomponents, expected {target.d_mlp} +- {W_OUT_ALIVE_TOLERANCE}"
                )
            if errors := int(value[(w_out, "dense_pattern_errors")]):
                failures.append(f"{w_out}: {errors} dense-columns errors")
    return failures


def expected_alive(target: ResidMLPTargetConfig) -> dict[str, int]:
    """The ground truth's mechanisms per decomposed layer: one per feature in each W_in, one per
    neuron in each W_out."""
    return {
        f"layers.{k}.{part}": target.n_features if part == "mlp_in" else target.d_mlp
        for k in range(target.n_layers)
        for part in ("mlp_in", "mlp_out")
    }
