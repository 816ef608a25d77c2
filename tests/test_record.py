"""The results report is the record's: rebuilt from the committed summaries alone, byte for byte,
with each summary's standing against today's settings."""

import copy
import json
from pathlib import Path

import pandas as pd
import yaml
from conftest import TINY_TMS

from spd.config import load_params, settings_hash
from spd.evaluate.summary import metric_summary
from spd.record import CURRENT, EARLIER, UNRECORDED, read_summaries, results_report

REPO = Path(__file__).parents[1]


def test_the_committed_report_is_what_the_committed_summaries_give(monkeypatch):
    monkeypatch.chdir(REPO)
    expected = results_report(load_params("params.yaml"))
    assert (REPO / "docs/results.md").read_text() == expected, (
        "docs/results.md differs from the record: rebuild it with `python -m spd report`"
    )


def _summary(mmcs: float, config_hash: str | None, recovered: bool | None = True) -> dict:
    summary = {
        "final_loss": {"total": 0.1},
        "linear1": {
            "mmcs": mmcs,
            "ml2r": 1.0,
            "alive_subcomponents": 5.0,
            "ci_pattern_errors": 0.0,
        },
        "linear2": {"alive_subcomponents": 5.0, "ci_pattern_errors": 0.0},
    }
    if config_hash is not None:
        summary["run"] = {"config_hash": config_hash, "steps": 30}
        summary["verdict"] = {
            "recovered": recovered,
            "failures": [] if recovered else ["MMCS low"],
            "reason": None,
        }
    return summary


def _record(tmp_path: Path, summaries: dict[int, dict]) -> Path:
    body = {k: copy.deepcopy(v) for k, v in TINY_TMS.items() if k != "name"}
    (tmp_path / "params.yaml").write_text(
        yaml.safe_dump({"seeds": [0], "robustness_seeds": [0, 1, 2], "experiments": {"tiny": body}})
    )
    for seed, summary in summaries.items():
        path = tmp_path / "metrics/tiny" / f"seed{seed}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(summary))
    return tmp_path


def test_summaries_stand_as_current_earlier_or_unrecorded_and_are_never_averaged_across(tmp_path):
    params_path = _record(tmp_path, {})
    current = settings_hash(load_params(params_path / "params.yaml").experiment("tiny"))
    root = _record(
        tmp_path,
        {
            0: _summary(1.0, current),
            1: _summary(0.9, "0123456789ab", False),
            2: _summary(0.5, None),
            3: _summary(1.0, current),  # another seed: the same settings
        },
    )
    params = load_params(root / "params.yaml")
    assert [s.status for s in read_summaries(params, root / "metrics")] == [
        CURRENT,
        EARLIER,
        UNRECORDED,
        CURRENT,
    ]
    report = results_report(params, root / "metrics")
    assert (
        f"| tiny | SPD | 0,3 | {CURRENT} | 1.0000 ± 0.0000 | 1.0000 ± 0.0000 | - | - | 2 of 2 |"
        in report
    )
    assert f"| tiny | SPD | 1 | {EARLIER} | 0.9000 | 1.0000 | - | - | 0 of 1 |" in report
    # earlier settings: the recorded verdict stands (today's target may not be its ground truth)
    assert "| misses: MMCS low |" in report
    # no recorded verdict: the summary's own metrics give it (MMCS 0.5 misses)
    assert "misses: MMCS 0.5000 < 0.999 (from its metrics)" in report
    assert "| tiny | 1, 2 |" in report  # wanted seeds without a current summary


def test_a_run_with_no_summary_is_listed_as_not_run(tmp_path):
    root = _record(tmp_path, {})
    report = results_report(load_params(root / "params.yaml"), root / "metrics")
    assert "| tiny | SPD | - | not run |" in report
    assert "| tiny | 0, 1, 2 |" in report


def test_a_comparison_experiment_outside_the_main_job_gets_its_seed_table(tmp_path):
    body = {k: copy.deepcopy(v) for k, v in TINY_TMS.items() if k != "name"}
    other = copy.deepcopy(body)
    other["target"]["tied_adam"] = "per_layer"
    experiments = {"tiny": body, "tiny_other": other}
    (tmp_path / "params.yaml").write_text(
        yaml.safe_dump({"seeds": [0], "main_experiments": ["tiny"], "experiments": experiments})
    )
    params = load_params(tmp_path / "params.yaml")
    path = tmp_path / "metrics/tiny_other/seed0.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(_summary(0.75, settings_hash(params.experiment("tiny_other")))))
    report = results_report(params, tmp_path / "metrics")
    section = report.split("### tiny_other\n")[1].split("\n## ")[0]
    assert "| 0 | current | 0.7500 | 1.0000 | 5 / 5 | - | 0 / 0 |" in section


def test_the_seed_table_counts_live_subcomponents_on_the_probes_alone_where_recorded(tmp_path):
    params_path = _record(tmp_path, {})
    current = settings_hash(load_params(params_path / "params.yaml").experiment("tiny"))
    recorded = _summary(1.0, current)
    recorded["linear1"]["alive_on_probes"] = 5.0
    recorded["linear2"]["alive_on_probes"] = 4.0
    root = _record(tmp_path, {0: recorded, 1: _summary(1.0, current)})
    report = results_report(load_params(root / "params.yaml"), root / "metrics")
    assert "| 0 | current | 1.0000 | 1.0000 | 5 / 5 | 5 / 4 | 0 / 0 |" in report
    assert "| 1 | current | 1.0000 | 1.0000 | 5 / 5 | - | 0 / 0 |" in report


def test_a_summary_keeps_the_live_counts_both_ways_and_leaves_other_metrics_out():
    metrics = pd.DataFrame(
        {
            "layer": ["linear1", "linear1", "linear1", "linear2"],
            "metric": ["alive_subcomponents", "alive_on_probes", "ci_histogram_bins", "mmcs"],
            "value": [41.0, 40.0, 20.0, 0.5],
        }
    )
    losses = pd.DataFrame({"step": [0, 9], "lr": [1e-3, 1e-3], "total": [2.0, 1.0]})
    record = {
        **{key: key for key in ("experiment", "family", "method", "config_hash")},
        "seed": 0,
        "steps": 10,
        "decomposition": {"wall_s": 1.0},
        "verdict": {"recovered": False, "failures": ["x"], "reason": None, "text": "misses: x"},
    }
    summary = metric_summary(metrics, losses, record)
    assert summary["linear1"] == {"alive_subcomponents": 41.0, "alive_on_probes": 40.0}
    assert summary["linear2"] == {"mmcs": 0.5}
    assert summary["final_loss"] == {"total": 1.0}
    assert summary["verdict"] == {"recovered": False, "failures": ["x"], "reason": None}


def test_every_verdict_is_rescored_by_todays_criteria_and_a_changed_one_says_so(tmp_path):
    params_path = _record(tmp_path, {})
    current = settings_hash(load_params(params_path / "params.yaml").experiment("tiny"))
    recorded_recovering = _summary(0.5, current, recovered=True)  # MMCS 0.5 misses today
    recorded_missing = _summary(1.0, current, recovered=False)  # its metrics now pass
    root = _record(
        tmp_path, {0: recorded_recovering, 1: recorded_missing, 2: _summary(1.0, current)}
    )
    report = results_report(load_params(root / "params.yaml"), root / "metrics")
    assert "| misses: MMCS 0.5000 < 0.999 (re-scored: summarised as recovers) |" in report
    assert "| recovers (re-scored: summarised as misses: MMCS low) |" in report
    assert "| 2 | current | 1.0000 | 1.0000 | 5 / 5 | - | 0 / 0 | recovers |" in report
    assert (
        "| tiny | SPD | 0,1,2 | current | 0.8333 ± 0.2887 | 1.0000 ± 0.0000 | - | - | 2 of 3 |"
        in report
    )
    assert "; for 2 of them recovers / misses" in report


def test_a_recorded_verdict_stands_where_the_criteria_cannot_read_the_summary(tmp_path):
    params_path = _record(tmp_path, {})
    current = settings_hash(load_params(params_path / "params.yaml").experiment("tiny"))
    old = _summary(0.5, current, recovered=False)
    del old["linear1"]["ml2r"]  # a metric today's criteria read
    root = _record(tmp_path, {0: old})
    report = results_report(load_params(root / "params.yaml"), root / "metrics")
    assert "| misses: MMCS low |" in report and "; for 0 of them" in report


def test_a_sweep_row_links_its_summary(tmp_path):
    params_path = _record(tmp_path, {})
    current = settings_hash(load_params(params_path / "params.yaml").experiment("tiny"))
    root = _record(tmp_path, {0: _summary(1.0, current)})
    raw = yaml.safe_load((root / "params.yaml").read_text())
    raw["sweeps"] = {"C": {"setting": "C", "experiments": {"tiny": [8, 16]}}}
    (root / "params.yaml").write_text(yaml.safe_dump(raw))
    report = results_report(load_params(root / "params.yaml"), root / "metrics")
    sweep = report.split("### tiny, C (C)\n")[1].split("\n## ")[0]
    link = (root / "metrics/tiny/seed0.json").as_posix()
    assert f"| 8 | 0 | current | 1.0000 | 1.0000 | 5 / 5 | - | 0 / 0 | recovers | {link} |" in sweep
