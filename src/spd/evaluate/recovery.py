"""The section 7 verdict: did the decomposition recover the ground-truth mechanisms?"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from spd.config import TargetConfig

MMCS_MIN = 0.999
ML2R_RANGE = (0.98, 1.04)


def tms_recovery_failures(rows: Iterable[Mapping[str, object]], target: TargetConfig) -> list[str]:
    """Every section 7 threshold a TMS decomposition misses; empty means full recovery."""
    value = {(str(r["layer"]), str(r["metric"])): float(r["value"]) for r in rows}  # type: ignore[arg-type]
    if ("linear1", "mmcs") not in value:
        return ["linear1 was not decomposed: the ground truth cannot be scored"]
    failures = []
    if value[("linear1", "mmcs")] < MMCS_MIN:
        failures.append(f"MMCS {value[('linear1', 'mmcs')]:.4f} < {MMCS_MIN}")
    low, high = ML2R_RANGE
    if not low <= value[("linear1", "ml2r")] <= high:
        failures.append(f"ML2R {value[('linear1', 'ml2r')]:.4f} outside [{low}, {high}]")
    expected_alive = {"linear1": target.n_features, "linear2": target.n_features}
    if target.identity_layer:
        expected_alive["hidden"] = target.d_hidden
    for layer, expected in expected_alive.items():
        if (layer, "alive_subcomponents") not in value:
            failures.append(f"{layer} was not decomposed")
            continue
        alive = int(value[(layer, "alive_subcomponents")])
        if alive != expected:
            failures.append(f"{layer}: {alive} alive subcomponents, expected {expected}")
    for layer in ("linear1", "linear2"):
        errors = int(value.get((layer, "ci_pattern_errors"), 0))
        if errors:
            failures.append(f"{layer}: {errors} CI-pattern errors")
    return failures
