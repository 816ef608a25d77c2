"""The Snakemake profiles: what `spd decompose` command each one gives SPD and APD experiments."""

import copy
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import TINY_APD, TINY_TMS

from spd.pipeline.layout import DECOMPOSITION_FILE

REPO = Path(__file__).parents[1]
PROFILES = REPO / "profiles"


@pytest.mark.parametrize("profile", sorted(p.name for p in PROFILES.iterdir() if p.is_dir()))
def test_every_profile_is_a_yaml_mapping(profile: str):
    config = yaml.safe_load((PROFILES / profile / "config.yaml").read_text())
    assert isinstance(config, dict) and config


def test_gpu_profile_decomposes_on_cuda_with_limited_gpu_slots():
    config = yaml.safe_load((PROFILES / "gpu/config.yaml").read_text())
    decompose = config["set-resources"]["decompose"]
    assert decompose["device"] == "cuda" and decompose["cuda_graph"] == 1
    assert 1 <= decompose["gpu_slots"] <= config["resources"]["gpu_slots"]
    assert config["rerun-incomplete"] and config["printshellcmds"]  # as profiles/default has them


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    shutil.copy(REPO / "Snakefile", tmp_path)
    shutil.copytree(REPO / "workflow", tmp_path / "workflow")
    shutil.copytree(REPO / "profiles", tmp_path / "profiles")
    spd = copy.deepcopy({k: v for k, v in TINY_TMS.items() if k != "name"})
    apd = copy.deepcopy(spd) | {"decomposition": TINY_APD}
    params = {"seeds": [0], "experiments": {"tiny_spd": spd, "tiny_apd": apd}}
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(params))
    return tmp_path


def _decompose_commands(workdir: Path, *profile: str) -> dict[str, str]:
    """Experiment -> its `spd decompose` command, from a dry run that prints the shell commands."""
    targets = [
        f"results/runs/{name}/seed0/{DECOMPOSITION_FILE}" for name in ("tiny_spd", "tiny_apd")
    ]
    command = [
        "snakemake",
        "-n",
        "-p",
        "--cores",
        "8",
        *profile,
        *targets,
        "--config",
        "params=tiny.yaml",
    ]
    result = subprocess.run(command, cwd=workdir, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = (result.stdout + result.stderr).splitlines()  # "Shell command: python -m spd ..."
    commands = [
        line[line.index("python -m spd decompose") :]
        for line in lines
        if "python -m spd decompose" in line
    ]
    by_experiment = {
        name: [c for c in commands if f"--experiment {name} " in c]
        for name in ("tiny_spd", "tiny_apd")
    }
    assert all(len(found) == 1 for found in by_experiment.values()), commands
    return {name: found[0] for name, found in by_experiment.items()}


@pytest.mark.skipif(shutil.which("snakemake") is None, reason="snakemake not installed")
def test_gpu_profile_gives_spd_cuda_graphs_and_apd_plain_cuda(workdir: Path):
    commands = _decompose_commands(workdir, "--workflow-profile", "profiles/gpu")
    assert "--device cuda --cuda-graph" in commands["tiny_spd"]
    assert "--device cuda" in commands["tiny_apd"]
    assert "--cuda-graph" not in commands["tiny_apd"]


@pytest.mark.skipif(shutil.which("snakemake") is None, reason="snakemake not installed")
def test_default_profile_decomposes_on_the_cpu_without_graphs(workdir: Path):
    for name, command in _decompose_commands(workdir).items():
        assert command.endswith(
            f"--threads 1 --device cpu > logs/decompose/{name}/seed0.log 2>&1"
        ), command
        assert "--cuda-graph" not in command
