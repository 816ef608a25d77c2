"""The benchmark script runs on the package as it is, and its result lines name where they ran."""

import json
import subprocess
import sys
from pathlib import Path

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
