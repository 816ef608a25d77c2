"""The record: the committed run summaries (results/metrics/<run>/seed<N>.json), read and written
out as the results report, docs/results.md. Nothing here reads a run folder, so the report is
rebuilt from a fresh clone; the same summaries always give the same bytes."""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from spd.config import ConfigError, ExperimentConfig, Params, settings_hash
from spd.evaluate.recovery import recovery_failures
from spd.evaluate.table1 import PAPER_VALUES
from spd.families.registry import BUILT_IN, family
from spd.runsets import (
    all_configs,
    compared_experiments,
    feature_matched_experiments,
    main_experiments,
    sweep_points_of,
)

METRICS_ROOT = Path("results/metrics")
CURRENT, EARLIER, UNRECORDED = "current", "earlier settings", "settings not recorded"


@dataclass(frozen=True)
class Summary:
    """One run's committed summary, and how it stands against params.yaml's settings today."""

    run: str  # the run folder's name: an experiment, or a sweep point
    seed: int
    path: Path
    data: dict
    status: str

    def value(self, layer: str, metric: str) -> float:
        return float(self.data.get(layer, {}).get(metric, math.nan))


def read_summaries(params: Params, root: Path = METRICS_ROOT) -> list[Summary]:
    """Every summary under `root` whose run params.yaml still names, sorted by run and seed."""
    configs = all_configs(params)
    summaries = []
    for path in sorted(root.glob("*/seed*.json")):
        run, seed = path.parent.name, int(path.stem.removeprefix("seed"))
        try:
            data = json.loads(path.read_text())
        except ValueError:
            raise ConfigError(f"{path}: not a readable summary (invalid JSON)") from None
        config = configs.get(run)
        status = _status(data, config) if config is not None else "no longer in params.yaml"
        summaries.append(Summary(run, seed, path, data, status))
    return sorted(summaries, key=lambda s: (s.run, s.seed))


def _status(data: dict, config: ExperimentConfig) -> str:
    """Whether the run was made with the settings params.yaml gives the experiment today (its
    seed aside: the settings hash leaves it out)."""
    recorded = data.get("run", {}).get("config_hash")
    if recorded is None:
        return UNRECORDED
    return CURRENT if recorded == settings_hash(config) else EARLIER


def _criteria_failures(summary: Summary, config: ExperimentConfig | None) -> list[str] | None:
    """Every recovery criterion that the summary's metrics miss under today's criteria; None where
    the criteria give no verdict (no longer in params.yaml, not SPD, or no ground truth) or cannot
    (the summary lacks a metric they read)."""
    if config is None or config.decomposition.method != "spd":
        return None
    rows = [
        {"layer": layer, "metric": metric, "value": value}
        for layer, metrics in summary.data.items()
        if layer not in ("final_loss", "run", "provenance", "verdict")
        for metric, value in metrics.items()
    ]
    try:
        return recovery_failures(rows, config.target)
    except KeyError:  # a summary from before the criteria read one of their metrics
        return None


def _verdict_words(recorded: dict) -> str:
    """A verdict as the report words it, from a summary's "verdict" record."""
    if recorded["recovered"] is None:
        return f"no verdict: {recorded['reason']}"
    return "recovers" if recorded["recovered"] else "misses: " + "; ".join(recorded["failures"])


def verdict_and_rescored(summary: Summary, config: ExperimentConfig | None) -> tuple[str, bool]:
    """The report's verdict for a summary, and whether it was re-scored: for a summary of today's
    settings, what today's recovery criteria give its metrics (as summaries round them), marked
    "(re-scored: ...)" where recovers / misses differs from the verdict recorded when the run was
    summarised, so that a change of the criteria re-scores the record. A recorded verdict stands
    where it says "no verdict" (APD; a target that leaves features out, which metrics do not
    show), where the summary is of earlier settings (today's target may not be its ground truth)
    and where the criteria cannot read its metrics. A summary from before verdicts were recorded
    gets the criteria's verdict, marked "(from its metrics)"."""
    recorded = summary.data.get("verdict")
    if recorded is not None and (recorded["recovered"] is None or summary.status != CURRENT):
        return _verdict_words(recorded), False
    failures = _criteria_failures(summary, config)
    if failures is None:
        if recorded is not None:
            return _verdict_words(recorded), False
        if config is None or config.decomposition.method != "spd":
            return "-", False
        return "no verdict: the target family has no ground truth (from its metrics)", False
    today = _verdict_words({"recovered": not failures, "failures": failures})
    if recorded is None:
        return f"{today} (from its metrics)", False
    if recorded["recovered"] != (not failures):
        return f"{today} (re-scored: summarised as {_verdict_words(recorded)})", True
    return today, False


def number_cell(value: float, digits: int = 4) -> str:
    return "-" if math.isnan(value) else f"{value:.{digits}f}"


def count_cell(value: float) -> str:
    return "-" if math.isnan(value) else str(int(value))


def with_feature_spread(summary: Summary, metric: str) -> str:
    """linear1's value of `metric`, ± its standard deviation over the features where the
    summary has it (summaries made before it was recorded do not)."""
    value, spread = summary.value("linear1", metric), summary.value("linear1", f"{metric}_std")
    return (
        number_cell(value)
        if math.isnan(spread)
        else f"{number_cell(value)} ± {number_cell(spread)}"
    )


def _link(summary: Summary) -> str:
    """The summary's path, linked from docs/ when it is relative to the repository root."""
    path = summary.path.as_posix()
    return path if summary.path.is_absolute() else f"[{path}](../{path})"


def _wall_time(summary: Summary) -> str:
    """'740 s (cpu, 1 thread)' from the summary's provenance; '-' where it has none."""
    provenance = summary.data.get("provenance")
    if not provenance:
        return "-"
    threads = provenance["threads"]
    return f"{provenance['wall_s']:.0f} s ({provenance['device']}, {threads} thread{'s' if threads > 1 else ''})"


def _table(header: Iterable[str], rows: Iterable[Iterable[str]]) -> list[str]:
    header = list(header)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines + [""]


def _mean_std(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.4f}"
    return f"{statistics.mean(values):.4f} ± {statistics.stdev(values):.4f}"


class Report:
    def __init__(self, params: Params, summaries: list[Summary]) -> None:
        self.params = params
        self.configs = all_configs(params)
        self.summaries = summaries
        self.by_run: dict[str, list[Summary]] = {}
        for summary in summaries:
            self.by_run.setdefault(summary.run, []).append(summary)
        # each summary's (verdict, re-scored), worked out once for every table that shows it
        self.verdicts = {
            s.path: verdict_and_rescored(s, self.configs.get(s.run)) for s in summaries
        }

    def verdict(self, summary: Summary) -> str:
        return self.verdicts[summary.path][0]

    def runs_of(self, name: str) -> list[Summary]:
        return self.by_run.get(self.params.run_source(name), [])

    def source(self, summary: Summary) -> str:
        return _link(summary)

    def table1(self) -> list[str]:
        lines = [
            "## Table 1: TMS, MMCS and ML2R",
            "",
            "Mean ± sample standard deviation over the seeds with a summary, one row per experiment and",
            "settings; runs of different settings are never averaged together. Paper: the values the SPD",
            "paper reports (for APD, one run's ± over its features).",
            "",
        ]
        rows = []
        names = list(
            dict.fromkeys([*main_experiments(self.params), *compared_experiments(self.params)])
        )
        for name in names:
            groups: dict[str, list[Summary]] = {}
            for summary in self.runs_of(name):
                groups.setdefault(summary.status, []).append(summary)
            paper = PAPER_VALUES.get(name)
            paper_cells = [f"{paper[0]:.3f}", f"{paper[1]:.3f}"] if paper else ["-", "-"]
            method = self.configs[name].decomposition.method.upper()
            if not groups:
                rows.append([name, method, "-", "not run", "-", "-", *paper_cells, "-"])
            for status in sorted(groups, key=lambda s: (s != CURRENT, s)):
                group = groups[status]
                seeds = ",".join(str(s.seed) for s in group)
                mmcs = _mean_std([s.value("linear1", "mmcs") for s in group])
                ml2r = _mean_std([s.value("linear1", "ml2r") for s in group])
                recovered = sum(self.verdict(s).startswith("recovers") for s in group)
                verdicts = f"{recovered} of {len(group)}" if method == "SPD" else "-"
                rows.append([name, method, seeds, status, mmcs, ml2r, *paper_cells, verdicts])
        header = [
            "experiment",
            "method",
            "seeds",
            "settings",
            "MMCS",
            "ML2R",
            "paper MMCS",
            "paper ML2R",
            "recover",
        ]
        return lines + _table(header, rows)

    def seed_tables(self) -> list[str]:
        lines = [
            "## Seeds, per TMS experiment",
            "",
            "Each run's MMCS and ML2R, ± the sample standard deviation over its features where the",
            "summary records it: the form of the papers' values, which are one run's.",
            "",
        ]
        names = dict.fromkeys(
            [
                *main_experiments(self.params),
                *compared_experiments(self.params),
                *feature_matched_experiments(self.params, "spd"),  # and comparisons of their own
                *feature_matched_experiments(self.params, "apd"),
            ]
        )
        for name in names:
            lines += [f"### {name}", ""]
            runs = self.runs_of(name)
            if not runs:
                lines += ["No summary in the record.", ""]
                continue
            columns = family(self.configs[name].target).report_columns
            header = ["seed", "settings", *columns, "verdict", "decomposition time", "summary"]
            rows = [
                [
                    str(s.seed),
                    s.status,
                    *family(self.configs[name].target).report_cells(s),
                    self.verdict(s),
                    _wall_time(s),
                    self.source(s),
                ]
                for s in runs
            ]
            lines += _table(header, rows)
        return lines

    def sweeps(self) -> list[str]:
        lines = ["## Sweeps", ""]
        for sweep_name, sweep in self.params.sweeps.items():
            for experiment in sweep.experiments:
                columns = family(self.configs[experiment].target).report_columns
                lines += [f"### {experiment}, {sweep_name} ({sweep.setting})", ""]
                rows = []
                for point, value in sweep_points_of(self.params, sweep_name, experiment).items():
                    runs = [s for s in self.runs_of(point) if s.seed in self.params.seeds]
                    if not runs:
                        rows.append([f"{value:g}", "-", "not run", *["-"] * (len(columns) + 2)])
                    for s in runs:
                        cells = family(self.configs[point].target).report_cells(s)
                        rows.append(
                            [
                                f"{value:g}",
                                str(s.seed),
                                s.status,
                                *cells,
                                self.verdict(s),
                                self.source(s),
                            ]
                        )
                header = ["value", "seed", "settings"]
                header += columns
                lines += _table([*header, "verdict", "summary"], rows)
        return lines

    def family_sections(self) -> list[str]:
        """A section per family that has one (`Family.report_section`), built-in families first."""
        names = dict.fromkeys(
            [*BUILT_IN, *(s.target.family for s in self.params.experiments.values())]
        )
        lines: list[str] = []
        for name in names:
            if family(name).report_section:
                lines += self.family_section(name)
        return lines

    def family_section(self, family_name: str) -> list[str]:
        this = family(family_name)
        lines = [f"## {this.report_section}", ""]
        names = [n for n, s in self.params.experiments.items() if s.target.family == family_name]
        rows = []
        for name in names:
            runs = self.runs_of(name)
            method = self.configs[name].decomposition.method.upper()
            if not runs:
                rows.append(
                    [name, method, "-", "not run", *["-"] * (len(this.report_section_columns) + 2)]
                )
            for s in runs:
                rows.append(
                    [
                        name,
                        method,
                        str(s.seed),
                        s.status,
                        *this.report_cells(s),
                        self.verdict(s),
                        self.source(s),
                    ]
                )
        header = [
            "experiment",
            "method",
            "seed",
            "settings",
            *this.report_section_columns,
            "verdict",
            "summary",
        ]
        return lines + _table(header, rows)

    def not_run(self) -> list[str]:
        """Every run a pipeline target asks for that has no summary with today's settings."""
        wanted: dict[str, list[int]] = {}
        p = self.params
        for name in main_experiments(p):
            wanted.setdefault(name, []).extend([*p.seeds, *p.robustness_seeds])
        for name in compared_experiments(p):
            wanted.setdefault(name, []).extend(p.robustness_seeds)
        for name, settings in p.experiments.items():
            if family(settings.target).report_section:
                wanted.setdefault(name, []).extend(p.seeds)
        for name in p.sweep_points():
            wanted.setdefault(p.run_source(name), []).extend(p.seeds)
        rows = []
        for name, seeds in wanted.items():
            done = {s.seed for s in self.runs_of(name) if s.status == CURRENT}
            missing = sorted(set(seeds) - done)
            if missing:
                rows.append([name, ", ".join(str(seed) for seed in missing)])
        lines = [
            "## Not yet run with the current settings",
            "",
            "Runs that a pipeline target asks for and that have no summary with today's settings in the",
            "record (a summary of earlier settings does not count).",
            "",
        ]
        return lines + _table(["run", "seeds"], rows)

    def render(self) -> str:
        counts = {
            status: sum(s.status == status for s in self.summaries)
            for status in (CURRENT, EARLIER, UNRECORDED)
        }
        rescored = sum(rescored for _, rescored in self.verdicts.values())
        lines = [
            "# Results",
            "",
            "Generated from the run summaries committed in `results/metrics/` by `python -m spd report`",
            "(or `snakemake --cores 1 docs/results.md`); a test fails when it differs from what they give,",
            "so do not edit it by hand. Verdicts apply the [recovery criteria](method.md#recovery-criteria).",
            "",
            f"The record holds {len(self.summaries)} summaries: {counts[CURRENT]} made with the settings that",
            f"params.yaml gives today (**{CURRENT}**), {counts[EARLIER]} made with other settings",
            f"(**{EARLIER}**), and {counts[UNRECORDED]} from before summaries recorded their settings",
            f"(**{UNRECORDED}**; their verdicts are worked out from the metrics they hold). A current",
            f"summary's verdict is today's criteria applied to its metrics; for {rescored} of them recovers / misses",
            "differs from the verdict recorded when the run was summarised (marked **re-scored**).",
            "",
        ]
        lines += (
            self.table1()
            + self.seed_tables()
            + self.sweeps()
            + self.family_sections()
            + self.not_run()
        )
        return "\n".join(lines).rstrip("\n") + "\n"


def results_report(params: Params, root: Path = METRICS_ROOT) -> str:
    return Report(params, read_summaries(params, root)).render()
