"""A toy family from outside the package (examples/sparse_linear) through the whole Snakemake
workflow: its config validates through its own model, its metrics and verdict come out."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest
import yaml

from spd.pipeline.layout import RunFolder

REPO = Path(__file__).parents[1]
FAMILY = "sparse_linear.family:SparseLinear"

pytestmark = pytest.mark.skipif(shutil.which("snakemake") is None, reason="snakemake not installed")


def _env() -> dict[str, str]:
    paths = [str(REPO / "examples"), *filter(None, [os.environ.get("PYTHONPATH")])]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}


def test_example_family_runs_through_the_pipeline(tmp_path: Path):
    shutil.copy(REPO / "Snakefile", tmp_path)
    shutil.copytree(REPO / "workflow", tmp_path / "workflow")
    experiment = {
        "target": {"family": FAMILY, "n_features": 5, "d_out": 3},
        "decomposition": {
            "C": 8,
            "d_gate": 4,
            "importance_minimality_coeff": 3e-3,
            "pnorm": 1,
            "steps": 30,
            "batch_size": 64,
            "log_every": 10,
        },
        "evaluation": {"n_random": 200},
    }
    (tmp_path / "tiny.yaml").write_text(
        yaml.safe_dump({"seeds": [0], "experiments": {"lin": experiment}})
    )
    command = [
        "snakemake",
        "--cores",
        "2",
        "results/metrics/lin/seed0.json",
        "results/figures/lin.pdf",
        "--config",
        "params=tiny.yaml",
    ]
    result = subprocess.run(
        command, cwd=tmp_path, env=_env(), capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]

    run = tmp_path / "results/runs/lin/seed0"
    metrics = pd.read_parquet(RunFolder(run).metrics)
    assert set(metrics["family"]) == {FAMILY}
    assert {"alive_subcomponents", "mmcs", "ml2r", "ci_pattern_errors"} <= set(metrics["metric"])
    verdict = json.loads(RunFolder(run).record.read_text())["verdict"]
    assert verdict["recovered"] in (True, False)
    assert (tmp_path / "results/figures/lin.pdf").read_bytes().startswith(b"%PDF")


def test_example_family_import_failure_is_one_line(tmp_path: Path):
    config = {
        "name": "lin",
        "target": {"family": "sparse_linear.nosuch:X"},
        "decomposition": {"C": 8, "importance_minimality_coeff": 3e-3, "pnorm": 1},
    }
    (tmp_path / "lin.yaml").write_text(yaml.safe_dump(config))
    command = [
        "python",
        "-m",
        "spd",
        "run",
        "--config",
        str(tmp_path / "lin.yaml"),
        "--out",
        str(tmp_path / "out"),
    ]
    result = subprocess.run(command, env=_env(), capture_output=True, text=True, check=False)
    assert result.returncode == 2
    expected = (
        f"spd: error: {tmp_path / 'lin.yaml'}: target.family 'sparse_linear.nosuch:X': cannot import "
        "sparse_linear.nosuch (ModuleNotFoundError: No module named 'sparse_linear.nosuch')"
    )
    assert result.stderr.strip().splitlines() == [expected]


def test_example_family_config_validates_through_its_own_model(monkeypatch):
    from spd.config import ConfigError, parse_experiment_config

    monkeypatch.syspath_prepend(str(REPO / "examples"))
    raw = {
        "name": "lin",
        "target": {"family": FAMILY, "d_out": 2},
        "decomposition": {"C": 8, "importance_minimality_coeff": 3e-3, "pnorm": 1},
    }
    config = parse_experiment_config(raw)
    assert type(config.target).__name__ == "SparseLinearConfig"
    assert config.model_dump(mode="json")["target"]["d_out"] == 2
    assert parse_experiment_config(config.model_dump(mode="json")) == config
    raw["target"]["d_out"] = 0
    with pytest.raises(
        ConfigError,
        match=r"^config: bad config key 'target.d_out': Input should be greater than 0$",
    ):
        parse_experiment_config(raw)
