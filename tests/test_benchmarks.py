"""The benchmark script runs on the package as it is, and its result lines name where they ran."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import TINY_TMS

REPO = Path(__file__).parents[1]


def test_a_step_time_line_names_machine_torch_and_commit():
    command = [
        sys.executable,
        str(REPO / "benchmarks/spd_benchmark.py"),
        "_one-step-time",
        "tms_5-2",
        "--steps",
        "1",
        "--threads",
        "1",
        "--params",
        str(REPO / "params.yaml"),
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=True, cwd=REPO)
    line = json.loads(result.stdout.strip().splitlines()[-1])
    assert line["config"] == "tms_5-2" and line["median_step_ms"] > 0
    assert 0 < line["median_step_cpu_ms"] < 10 * line["median_step_ms"]
    assert line["machine"] and line["torch"] and line["commit"]
    assert isinstance(line["cpu_capability"], str) and line["cpu_capability"]
    assert line["load_avg_1min"] >= 0


@pytest.mark.parametrize("command", ["step-time", "time-to-quality"])
def test_an_unknown_experiment_is_a_one_line_error(command):
    script = str(REPO / "benchmarks/spd_benchmark.py")
    argv = [sys.executable, script, command, "tms_5_2", "--steps", "1"]
    result = subprocess.run(argv, check=False, capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith("spd_benchmark: error: unknown experiment 'tms_5_2'")
    assert len(result.stderr.strip().splitlines()) == 1


def test_the_main_job_benchmark_times_a_fresh_clone_and_scores_its_runs(tmp_path):
    # tiny settings under a new name (no record) and under a recorded run's name
    body = {k: v for k, v in TINY_TMS.items() if k != "name"}
    (tmp_path / "tiny.yaml").write_text(
        yaml.safe_dump({"seeds": [0], "experiments": {"tiny": body, "tms_5-2": body}})
    )
    script = str(REPO / "benchmarks/main_job.py")
    options = ["--cores", "1", "--reuse-kernels", "--params", str(tmp_path / "tiny.yaml")]
    command = [sys.executable, script, *options]
    result = subprocess.run(command, capture_output=True, text=True, check=True, cwd=tmp_path)
    line = json.loads(result.stdout.strip().splitlines()[-1])
    assert line["benchmark"] == "main_job" and line["cores"] == 1 and line["wall_s"] > 0
    assert line["fresh_kernel_builds"] is False and line["params"].endswith("tiny.yaml")
    assert {"decompose/tiny/seed0", "decompose/tms_5-2/seed0"} <= set(line["jobs_s"])
    for run in line["runs"].values():
        assert run["verdict"] in ("recovers", "misses") and run["device"] == "cpu"
        assert run["record_same_settings"] is False and run["record_same_values"] is False
    new = line["runs"]["tiny/seed0"]
    assert new["record_verdict"] is None and new["record_machine"] is None  # no record of tiny
    recorded = json.loads((REPO / "results/metrics/tms_5-2/seed0.json").read_text())
    word = "recovers" if recorded["verdict"]["recovered"] else "misses"
    provenance = recorded["provenance"]
    where = f"{provenance['machine']}, {provenance['device']}, {provenance['threads']} thread(s)"
    assert line["runs"]["tms_5-2/seed0"]["record_verdict"] == word
    assert line["runs"]["tms_5-2/seed0"]["record_machine"] == where
    assert line["machine"] and line["torch"] and line["commit"]
    assert "steps (100%) done | elapsed " in result.stderr
