"""The Snakemake workflow end to end on a tiny configuration (two experiments, few steps)."""

import copy
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import TINY_TMS

REPO = Path(__file__).parents[1]

pytestmark = pytest.mark.skipif(shutil.which("snakemake") is None, reason="snakemake not installed")


def _body(seed_offset: int = 0) -> dict:
    body = copy.deepcopy({k: v for k, v in TINY_TMS.items() if k != "name"})
    body["decomposition"]["seed"] = seed_offset
    return body


def _run_snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    command = ["snakemake", "--cores", "2", "--config", "params=tiny.yaml", *args]
    return subprocess.run(command, cwd=workdir, capture_output=True, text=True, check=False)


def _snakemake(workdir: Path, *args: str) -> str:
    result = _run_snakemake(workdir, *args)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout + result.stderr


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    shutil.copy(REPO / "Snakefile", tmp_path)
    shutil.copytree(REPO / "workflow", tmp_path / "workflow")
    params = {"seeds": [0], "experiments": {"tiny_a": _body(), "tiny_b": _body()}}
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(params))
    return tmp_path


def test_pipeline_builds_everything_then_nothing_then_only_the_changed_experiment(workdir: Path):
    _snakemake(workdir)
    for experiment in ("tiny_a", "tiny_b"):
        metrics = pd.read_parquet(workdir / f"results/runs/{experiment}/seed0/metrics.parquet")
        assert set(metrics["experiment"]) == {experiment}
        assert {"mmcs", "ml2r", "alive_subcomponents"} <= set(metrics["metric"])
        assert (workdir / f"logs/decompose/{experiment}/seed0.log").stat().st_size > 0
    assert (workdir / "results/figures/tms.pdf").read_bytes().startswith(b"%PDF")
    assert "Nothing to be done" in _snakemake(workdir, "-n")

    params = yaml.safe_load((workdir / "tiny.yaml").read_text())
    params["experiments"]["tiny_b"]["decomposition"]["importance_minimality_coeff"] = 1e-2
    (workdir / "tiny.yaml").write_text(yaml.safe_dump(params))
    plan = _snakemake(workdir, "-n", "--quiet", "rules")
    assert "train_target" not in plan
    assert "decompose" in plan and "evaluate" in plan
    before = (workdir / "results/runs/tiny_a/seed0/metrics.parquet").stat().st_mtime_ns
    _snakemake(workdir)
    assert (workdir / "results/runs/tiny_a/seed0/metrics.parquet").stat().st_mtime_ns == before


def test_bad_params_fail_before_any_job(workdir: Path):
    params = yaml.safe_load((workdir / "tiny.yaml").read_text())
    params["experiments"]["tiny_a"]["decomposition"]["C"] = 0
    (workdir / "tiny.yaml").write_text(yaml.safe_dump(params))
    result = _run_snakemake(workdir)
    assert result.returncode != 0
    assert "experiments.tiny_a.decomposition.C" in result.stdout + result.stderr
    assert not (workdir / "data").exists()
