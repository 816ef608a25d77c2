"""The verdict: did the decomposition recover the ground-truth mechanisms? The criteria are those
of docs/method.md, "Recovery criteria"."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from spd.config import TargetConfig
from spd.evaluate.causal_importance_metrics import CI_ERROR_KINDS

MMCS_MIN = 0.999
ML2R_RANGE = (0.98, 1.04)

Rows = Iterable[Mapping[str, object]]


def metric_values(rows: Rows) -> dict[tuple[str, str], float]:
    """Each row's value by (layer, metric)."""
    return {(str(r["layer"]), str(r["metric"])): float(r["value"]) for r in rows}  # type: ignore[arg-type]


def ci_pattern_failures(value: dict[tuple[str, str], float], layer: str) -> list[str]:
    """'<layer>: N CI-pattern errors (a weak diagonal, b off diagonal, c shared)' when N > 0; the
    kinds are named where the metrics table has them (tables without the ci_errors_* rows name none)."""
    errors = int(value.get((layer, "ci_pattern_errors"), 0))
    if not errors:
        return []
    kinds = [
        f"{int(value[(layer, f'ci_errors_{kind}')])} {kind.replace('_', ' ')}"
        for kind in CI_ERROR_KINDS
        if (layer, f"ci_errors_{kind}") in value
    ]
    return [f"{layer}: {errors} CI-pattern errors" + (f" ({', '.join(kinds)})" if kinds else "")]


CRITERIA = "docs/method.md, Recovery criteria"


@dataclass(frozen=True)
class Verdict:
    """recovered: True or False against the criteria, None where there is no verdict to give
    (`reason` says why); failures: every criterion missed."""

    recovered: bool | None
    failures: tuple[str, ...] = ()
    reason: str | None = None

    @property
    def text(self) -> str:
        if self.recovered is None:
            return f"no verdict: {self.reason}"
        if self.recovered:
            return f"recovered: every recovery criterion met ({CRITERIA})"
        return f"not recovered ({CRITERIA}): " + "; ".join(self.failures)


def verdict(
    rows: Rows, target: TargetConfig, method: str, missing_features: Sequence[int]
) -> Verdict:
    """The run's verdict; none for a target that does not represent every feature (nothing to
    recover there), nor for APD (no causal importances: MMCS and ML2R are its scores)."""
    if missing_features:
        listed = ", ".join(str(j) for j in missing_features)
        return Verdict(
            None,
            reason=f"the target does not represent every feature (missing: {listed}), "
            "so there is no ground truth to score against",
        )
    if method == "apd":
        return Verdict(None, reason="APD has no causal importances; it is scored by MMCS and ML2R")
    failures = recovery_failures(rows, target)
    if failures is None:
        return Verdict(None, reason="the target family has no ground truth to score against")
    return Verdict(not failures, tuple(failures))


def recovery_failures(rows: Rows, target: TargetConfig) -> list[str] | None:
    """Every recovery criterion the decomposition misses; empty means full recovery; None where
    the target's family has no ground truth."""
    from spd.families.registry import family

    return family(target).recovery_failures(rows, target)


def expected_alive(target: TargetConfig) -> dict[str, int]:
    """The ground truth's number of mechanisms per decomposed layer."""
    from spd.families.registry import family

    return family(target).expected_alive(target)


def recovery_summary(rows: Rows, target: TargetConfig) -> dict[str, float | bool]:
    """One run at a glance: MMCS and ML2R (TMS); live subcomponents above the ground truth's count
    (surplus) and below it (shortfall), each summed over the layers, so that one layer's extra
    subcomponent does not hide another's missing one; CI-pattern errors summed over layers; the
    verdict."""
    rows = list(rows)
    value = metric_values(rows)
    differences = [
        value[(layer, "alive_subcomponents")] - expected
        for layer, expected in expected_alive(target).items()
        if (layer, "alive_subcomponents") in value
    ]
    errors = sum(v for (_, metric), v in value.items() if metric == "ci_pattern_errors")
    return {
        "mmcs": value.get(("linear1", "mmcs"), float("nan")),
        "ml2r": value.get(("linear1", "ml2r"), float("nan")),
        "alive_surplus": sum(max(d, 0.0) for d in differences),
        "alive_shortfall": sum(max(-d, 0.0) for d in differences),
        "ci_errors": errors,
        "recovered": recovery_failures(rows, target) == [],
    }
