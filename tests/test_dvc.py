"""DVC drives the same entry points as Snakemake: full build, no-op rebuild, minimal rerun after a
parameter change, `dvc metrics diff`, and a push / fresh clone / pull round trip, on a temporary
copy of the repository with tiny settings."""

import copy
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import TINY_TMS

REPO = Path(__file__).parents[1]

pytestmark = pytest.mark.skipif(shutil.which("dvc") is None, reason="dvc not installed")

EXPERIMENTS = ("tiny_a", "tiny_b")
OUTPUTS = [
    *(f"data/targets/{name}/target.pt" for name in EXPERIMENTS),
    *(f"results/runs/{name}/seed0/{table}" for name in EXPERIMENTS
      for table in ("decomposition.pt", "losses.parquet", "metrics.parquet", "weights.parquet")),
    "results/tables/tms_table1.parquet",
    "results/figures/tms.pdf",
]


def _run(cwd: Path, *command: str) -> str:
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"{' '.join(command)}:\n{result.stdout}\n{result.stderr}"
    return result.stdout + result.stderr


def _set_beta3(repo: Path, experiment: str, value: float) -> None:
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["experiments"][experiment]["decomposition"]["importance_minimality_coeff"] = value
    (repo / "params.yaml").write_text(yaml.safe_dump(params))


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    for name in ("dvc.yaml", ".dvcignore", ".gitignore", "Snakefile"):
        shutil.copy(REPO / name, root)
    for folder in ("workflow", "profiles"):
        shutil.copytree(REPO / folder, root / folder)
    shutil.copytree(REPO / "src", root / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    body = {k: v for k, v in TINY_TMS.items() if k != "name"}
    params = {
        "seeds": [0],
        "main_experiments": list(EXPERIMENTS),
        "experiments": {name: copy.deepcopy(body) for name in EXPERIMENTS},
    }
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    _run(root, "git", "init", "-q")
    _run(root, "git", "config", "user.email", "test@example.com")
    _run(root, "git", "config", "user.name", "test")
    _run(root, "dvc", "init", "-q")
    return root


def test_repro_rerun_param_change_metrics_diff_push_and_pull(repo: Path, tmp_path: Path):
    first = _run(repo, "dvc", "repro")
    assert first.count("Running stage") == 2 + 2 + 2 + 2  # targets, decompose, evaluate, table+figures
    assert "Running stage" not in _run(repo, "dvc", "repro")
    _run(repo, "git", "add", "-A")
    _run(repo, "git", "commit", "-qm", "tiny results")

    target_b = (repo / "data/targets/tiny_b/target.pt").stat().st_mtime_ns
    run_a = (repo / "results/runs/tiny_a/seed0/decomposition.pt").stat().st_mtime_ns
    _set_beta3(repo, "tiny_b", 1e-2)
    rerun = {line.split("'")[1] for line in _run(repo, "dvc", "repro").splitlines()
             if line.startswith("Running stage")}
    assert rerun == {"decompose@tiny_b-0", "evaluate@tiny_b-0", "tms_table1", "tms_figures"}
    assert (repo / "data/targets/tiny_b/target.pt").stat().st_mtime_ns == target_b
    assert (repo / "results/runs/tiny_a/seed0/decomposition.pt").stat().st_mtime_ns == run_a
    diff = _run(repo, "dvc", "metrics", "diff")
    assert "results/metrics/tiny_b/seed0.json" in diff
    assert "results/metrics/tiny_a/seed0.json" not in diff
    assert "final_loss.importance_minimality" in diff

    remote = tmp_path / "remote"
    _run(repo, "dvc", "remote", "add", "-d", "shared", str(remote))
    _run(repo, "dvc", "push")
    _run(repo, "git", "add", "-A")
    _run(repo, "git", "commit", "-qm", "beta3 1e-2 for tiny_b")

    clone = tmp_path / "clone"
    _run(tmp_path, "git", "clone", "-q", str(repo), str(clone))
    assert not (clone / OUTPUTS[0]).exists()
    _run(clone, "dvc", "pull")
    for path in OUTPUTS:
        assert (clone / path).read_bytes() == (repo / path).read_bytes(), path
    assert "up to date" in _run(clone, "dvc", "status")
    assert "Running stage" not in _run(clone, "dvc", "repro")

    # Snakemake, the other driver, sees pulled files as new: after a trusted pull, --touch marks
    # them up to date instead of recomputing.
    _run(clone, "snakemake", "--cores", "1", "--touch", "--quiet")
    assert "Nothing to be done" in _run(clone, "snakemake", "--cores", "1", "-n")
