"""A TMS decomposition's verdict: the recovery criteria of docs/method.md, "Recovery criteria",
read from its metric rows."""

from __future__ import annotations

from spd.config import TMSTargetConfig
from spd.evaluate.recovery import ML2R_RANGE, MMCS_MIN, Rows, ci_pattern_failures, metric_values


def recovery_failures(rows: Rows, target: TMSTargetConfig) -> list[str]:
    """Every recovery criterion a TMS decomposition misses; empty means full recovery."""
    value = metric_values(rows)
    if ("linear1", "mmcs") not in value:
        return ["linear1 was not decomposed: the ground truth cannot be scored"]
    failures = []
    if value[("linear1", "mmcs")] < MMCS_MIN:
        failures.append(f"MMCS {value[('linear1', 'mmcs')]:.4f} < {MMCS_MIN}")
    low, high = ML2R_RANGE
    if not low <= value[("linear1", "ml2r")] <= high:
        failures.append(f"ML2R {value[('linear1', 'ml2r')]:.4f} outside [{low}, {high}]")
    for layer, expected in expected_alive(target).items():
        if (layer, "alive_subcomponents") not in value:
            failures.append(f"{layer} was not decomposed")
            continue
        alive = int(value[(layer, "alive_subcomponents")])
        if alive != expected:
            failures.append(f"{layer}: {alive} alive subcomponents, expected {expected}")
    for layer in ("linear1", "linear2"):
        failures += ci_pattern_failures(value, layer)
    return failures


def expected_alive(target: TMSTargetConfig) -> dict[str, int]:
    """The ground truth's mechanisms per decomposed layer: one per feature in linear1 and linear2,
    one per hidden dimension in the identity layer."""
    expected = {"linear1": target.n_features, "linear2": target.n_features}
    if target.identity_layer:
        expected["hidden"] = target.d_hidden
    return expected
