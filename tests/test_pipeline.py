"""The Snakemake workflow end to end on a tiny configuration (two experiments, few steps)."""

import copy
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import TINY_APD, TINY_RESID_MLP, TINY_TMS

from spd.pipeline.layout import METRICS_FILE, RunFolder

REPO = Path(__file__).parents[1]

pytestmark = pytest.mark.skipif(shutil.which("snakemake") is None, reason="snakemake not installed")


def _body(seed_offset: int = 0) -> dict:
    body = copy.deepcopy({k: v for k, v in TINY_TMS.items() if k != "name"})
    body["decomposition"]["seed"] = seed_offset
    return body


def _run_snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    command = ["snakemake", "--cores", "2", *args, "--config", "params=tiny.yaml"]
    return subprocess.run(command, cwd=workdir, capture_output=True, text=True, check=False)


def _snakemake(workdir: Path, *args: str) -> str:
    result = _run_snakemake(workdir, *args)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout + result.stderr


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    shutil.copy(REPO / "Snakefile", tmp_path)
    shutil.copytree(REPO / "workflow", tmp_path / "workflow")
    shutil.copytree(REPO / "profiles", tmp_path / "profiles")
    params = {"seeds": [0], "experiments": {"tiny_a": _body(), "tiny_b": _body()}}
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(params))
    return tmp_path


def test_pipeline_builds_everything_then_nothing_then_only_the_changed_experiment(workdir: Path):
    _snakemake(workdir)
    for experiment in ("tiny_a", "tiny_b"):
        metrics = pd.read_parquet(workdir / f"results/runs/{experiment}/seed0/{METRICS_FILE}")
        assert set(metrics["experiment"]) == {experiment}
        assert {"mmcs", "ml2r", "alive_subcomponents"} <= set(metrics["metric"])
        assert (workdir / f"logs/decompose/{experiment}/seed0.log").stat().st_size > 0
    assert (workdir / "results/figures/tms.pdf").read_bytes().startswith(b"%PDF")
    table = pd.read_parquet(workdir / "results/tables/tms_table1.parquet")
    assert sorted(zip(table.experiment, table.metric, strict=True)) == [
        ("tiny_a", "ml2r"),
        ("tiny_a", "mmcs"),
        ("tiny_b", "ml2r"),
        ("tiny_b", "mmcs"),
    ]
    assert set(table.n_seeds) == {1}
    assert "| tiny_a | SPD | 0 |" in (workdir / "results/tables/tms_table1.md").read_text()
    assert "Nothing to be done" in _snakemake(workdir, "-n")
    _snakemake(workdir, "--report", "report.html")
    assert "tms_table1.md" in (workdir / "report.html").read_text()
    # The parameter file's content is what reruns jobs, not its name.
    shutil.copy(workdir / "tiny.yaml", workdir / "copy.yaml")
    same = subprocess.run(
        ["snakemake", "--cores", "2", "-n", "--config", "params=copy.yaml"],
        cwd=workdir,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "Nothing to be done" in same.stdout + same.stderr

    params = yaml.safe_load((workdir / "tiny.yaml").read_text())
    params["experiments"]["tiny_b"]["decomposition"]["importance_minimality_coeff"] = 1e-2
    (workdir / "tiny.yaml").write_text(yaml.safe_dump(params))
    plan = _snakemake(workdir, "-n", "--quiet", "rules")
    assert "train_target" not in plan
    assert "decompose" in plan and "evaluate" in plan
    before = RunFolder(workdir / "results/runs/tiny_a/seed0").metrics.stat().st_mtime_ns
    _snakemake(workdir)
    assert RunFolder(workdir / "results/runs/tiny_a/seed0").metrics.stat().st_mtime_ns == before


def test_a_partly_built_tree_still_gets_a_report(workdir: Path):
    _snakemake(workdir, "--report", "report.html")
    assert (workdir / "report.html").stat().st_size > 0


def test_a_configfile_is_refused_by_name_not_silently_ignored(workdir: Path):
    (workdir / "other.yaml").write_text(yaml.safe_dump({"seeds": [3]}))
    result = subprocess.run(
        ["snakemake", "--cores", "1", "-n", "--configfile", "other.yaml"],
        cwd=workdir,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "spd: error: Snakemake config keys 'seeds' are not read" in result.stdout + result.stderr


def test_bad_params_fail_before_any_job(workdir: Path):
    params = yaml.safe_load((workdir / "tiny.yaml").read_text())
    params["experiments"]["tiny_a"]["decomposition"]["C"] = 0
    (workdir / "tiny.yaml").write_text(yaml.safe_dump(params))
    result = _run_snakemake(workdir)
    assert result.returncode != 0
    assert "experiments.tiny_a.decomposition.C" in result.stdout + result.stderr
    assert not (workdir / "data").exists()


@pytest.mark.parametrize("kill_signal", [signal.SIGINT, signal.SIGKILL])
def test_interrupted_run_finishes_on_rerun_with_no_partial_outputs(workdir: Path, kill_signal):
    params = yaml.safe_load((workdir / "tiny.yaml").read_text())
    params["experiments"]["tiny_a"]["decomposition"]["steps"] = 3000
    (workdir / "tiny.yaml").write_text(yaml.safe_dump(params))
    command = ["snakemake", "--cores", "2", "--config", "params=tiny.yaml"]
    # The workflow must see Ctrl-C as a terminal sends it, even when this test runs in the
    # background with SIGINT ignored (an ignored signal is inherited, a handler is not).
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        run = subprocess.Popen(
            command,
            cwd=workdir,
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    finally:
        signal.signal(signal.SIGINT, previous)
    log = workdir / "logs/decompose/tiny_a/seed0.log"
    deadline = time.monotonic() + 120
    try:
        while not (log.is_file() and "step 1/" in log.read_text()):
            assert run.poll() is None and time.monotonic() < deadline, "decomposition never started"
            time.sleep(0.05)
        os.killpg(run.pid, kill_signal)
        run.wait(timeout=60)
    finally:  # never leave the workflow running behind a failed test
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
    run_dir = workdir / "results/runs/tiny_a/seed0"
    assert not RunFolder(run_dir).decomposition.exists()
    assert not RunFolder(run_dir).metrics.exists()

    if kill_signal == signal.SIGKILL:  # no chance to clean up: Snakemake's lock stays behind
        _snakemake(workdir, "--unlock")
    _snakemake(workdir)
    metrics = pd.read_parquet(RunFolder(run_dir).metrics)
    assert {"mmcs", "ml2r"} <= set(metrics["metric"])
    assert pd.read_parquet(RunFolder(run_dir).losses)["step"].max() == 2999
    assert not list(workdir.rglob("*.tmp"))
    assert "Nothing to be done" in _snakemake(workdir, "-n")


def test_sweeps_seeds_and_apd_build_their_figures_sharing_targets_and_runs(workdir: Path):
    tiny_apd = _body()
    tiny_apd["decomposition"] = dict(TINY_APD)
    resid = copy.deepcopy({k: v for k, v in TINY_RESID_MLP.items() if k != "name"})
    params = {
        "seeds": [0],
        "robustness_seeds": [0, 1],
        "experiments": {"tiny_a": _body(), "tiny_a_apd": tiny_apd, "tiny_resid": resid},
        "sweeps": {
            "beta3": {
                "setting": "importance_minimality_coeff",
                "experiments": {"tiny_a": [1e-3, 3e-3], "tiny_resid": [1e-4, 1e-2]},
            },
            "C": {"setting": "C", "experiments": {"tiny_a": [5, 8]}},
        },
    }
    (workdir / "tiny.yaml").write_text(yaml.safe_dump(params))
    targets = [
        "results/tables/table1.md",
        "results/figures/method_comparison.pdf",
        "results/figures/robustness.pdf",
        "results/figures/tiny_resid_beta3_sweep.pdf",
        "results/figures/resid_mlp.pdf",
    ]
    _snakemake(workdir, *targets)
    for target in targets[1:]:
        assert (workdir / target).read_bytes().startswith(b"%PDF"), target
    # One target per target setting; a sweep point at the experiment's own value is its run.
    assert sorted(p.name for p in (workdir / "data/targets").iterdir()) == ["tiny_a", "tiny_resid"]
    runs = sorted(p.name for p in (workdir / "results/runs").iterdir())
    assert runs == [
        "tiny_a",
        "tiny_a@C=5",
        "tiny_a@beta3=0.001",
        "tiny_a_apd",
        "tiny_resid",
        "tiny_resid@beta3=0.01",
    ]
    swept = pd.read_parquet(RunFolder(workdir / "results/runs/tiny_a@C=5/seed0").metrics)
    assert set(swept.experiment) == {"tiny_a@C=5"}
    alive = swept[(swept.layer == "linear1") & (swept.metric == "alive_subcomponents")].value
    assert alive.iloc[0] <= 5
    table = pd.read_parquet(workdir / "results/tables/table1.parquet")
    assert sorted(set(zip(table.experiment, table.method, table.seeds, strict=True))) == [
        ("tiny_a", "spd", "0,1"),
        ("tiny_a_apd", "apd", "0,1"),
    ]
    assert "| tiny_a_apd | APD | 0,1 |" in (workdir / "results/tables/table1.md").read_text()
    log = (workdir / "logs/figures/robustness.log").read_text()
    assert log.count("tiny_a ") >= 2 + 4  # two seeds, four sweep points (one shared with seed 0)
    assert "Nothing to be done" in _snakemake(workdir, "-n", *targets)


def test_targets_start_first_then_the_costliest_decomposition(workdir: Path):
    # one core: jobs run one at a time, in the order the scheduler picks them
    params = yaml.safe_load((workdir / "tiny.yaml").read_text())
    params["experiments"]["tiny_b"]["decomposition"]["steps"] = 60
    params["experiments"]["tiny_b"]["target"]["seed"] = 1  # its own target, trained after tiny_a's
    (workdir / "tiny.yaml").write_text(yaml.safe_dump(params))
    log = _snakemake(workdir, "--cores", "1", "--until", "decompose")
    started = re.findall(r"rule (\w+):\n(?:\s+\w+: .*\n)*?\s+wildcards: experiment=([\w-]+)", log)
    # The two targets have equal priority, so their order is the scheduler's to choose.
    assert sorted(started[:2]) == [("train_target", "tiny_a"), ("train_target", "tiny_b")], log
    assert started[2:] == [("decompose", "tiny_b"), ("decompose", "tiny_a")], log
