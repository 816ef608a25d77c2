"""Kill a decomposition with SIGKILL at random steps, rerun it: it resumes from its last saved
state and ends bit-identical to an uninterrupted run."""

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml
from conftest import TINY_RESID_MLP, TINY_TMS, Killed, killed_at, tiny_tms_target

from spd.cli import main
from spd.config import ResidMLPTargetConfig, SPDConfig
from spd.decomp.train import decompose
from spd.families.resid_mlp import model as resid_mlp
from spd.io import save_checkpoint
from spd.pipeline.layout import RunFolder

STEPS = 3000
EVERY = 100


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, Path]:
    config = {
        **TINY_TMS,
        "decomposition": {**TINY_TMS["decomposition"], "steps": STEPS, "log_every": 50},
    }
    config_path = tmp_path / "tiny.yaml"
    config_path.write_text(yaml.safe_dump(config))
    assert main(["train-target", "--config", str(config_path), "--out", str(tmp_path / "t")]) == 0
    return config_path, RunFolder(tmp_path / "t").target


def _command(config: Path, target: Path, out: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "spd",
        "decompose",
        "--config",
        str(config),
        "--target",
        str(target),
        "--out",
        str(out),
        "--checkpoint-every",
        str(EVERY),
        "--threads",
        "1",
    ]


def _kill_after_step(command: list[str], log: Path, step: int) -> None:
    """Start the run and SIGKILL it once its progress log has passed `step`."""
    with log.open("w") as handle:
        run = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while True:
        lines = [line for line in log.read_text().splitlines() if line.startswith("step ")]
        if lines and int(lines[-1].split()[1].split("/")[0]) > step:
            break
        assert run.poll() is None, f"run ended before step {step}:\n{log.read_text()}"
        assert time.monotonic() < deadline
        time.sleep(0.01)
    run.send_signal(signal.SIGKILL)
    run.wait()


def test_sigkilled_decomposition_resumes_bit_identically(setup, tmp_path):
    config, target = setup
    reference = tmp_path / "reference"
    subprocess.run(_command(config, target, reference), check=True, capture_output=True)

    out = tmp_path / "killed"
    rng = random.Random(0)
    kill_steps = sorted(rng.sample(range(150, STEPS - 300), 3))
    logs = []
    for attempt, step in enumerate(kill_steps):
        logs.append(tmp_path / f"attempt{attempt}.log")
        _kill_after_step(_command(config, target, out), logs[-1], step)
        assert not RunFolder(out).decomposition.exists()
        assert RunFolder(out).decomposition_state.exists()
    final = subprocess.run(
        _command(config, target, out), check=True, capture_output=True, text=True
    )
    assert "resuming from" in final.stderr
    assert any("resuming from" in log.read_text() for log in logs[1:])
    assert not RunFolder(out).decomposition_state.exists()

    expected = torch.load(RunFolder(reference).decomposition, weights_only=True)["state_dict"]
    resumed = torch.load(RunFolder(out).decomposition, weights_only=True)["state_dict"]
    assert expected.keys() == resumed.keys()
    for key in expected:
        assert torch.equal(expected[key], resumed[key]), key
    pd.testing.assert_frame_equal(
        pd.read_parquet(RunFolder(reference).losses),
        pd.read_parquet(RunFolder(out).losses),
        check_exact=True,
    )


def test_state_from_another_config_is_ignored(setup, tmp_path):
    config, target = setup
    out = tmp_path / "run"
    _kill_after_step(_command(config, target, out), tmp_path / "first.log", 300)
    other = yaml.safe_load(config.read_text())
    other["decomposition"]["importance_minimality_coeff"] = 1e-2
    config.write_text(yaml.safe_dump(other))
    result = subprocess.run(
        _command(config, target, out), check=True, capture_output=True, text=True
    )
    assert "made with another config or target; starting from step 0" in result.stderr


def test_a_resumed_run_counts_the_seconds_of_the_steps_before_its_last_save(step_clock, tmp_path):
    spd = SPDConfig(
        C=8,
        d_gate=4,
        importance_minimality_coeff=3e-3,
        pnorm=1,
        steps=40,
        batch_size=64,
        log_every=3,
    )
    state = tmp_path / "state.pt"
    with pytest.raises(Killed):
        decompose(tiny_tms_target(), spd, killed_at("step 34/40"), state, checkpoint_every=10)
    assert torch.load(state, weights_only=True)["extra"]["elapsed_s"] == 30.0
    # one second a step (step_clock): 30 steps before the save at step 30, then steps 30-39
    lines: list[str] = []
    resumed = decompose(tiny_tms_target(), spd, lines.append, state, checkpoint_every=10)
    assert resumed.seconds == 40.0
    # the progress line's elapsed time counts the 30 s before the resume too
    assert lines[-1].endswith("| 1.0 steps/s | elapsed 0:00:40, ETA 0:00:00")


def test_sigkilled_target_training_resumes_bit_identically(tmp_path):
    config = {**TINY_TMS, "target": {**TINY_TMS["target"], "steps": 8000}}
    config_path = tmp_path / "tiny.yaml"
    config_path.write_text(yaml.safe_dump(config))

    def command(out: Path) -> list[str]:
        return [
            sys.executable,
            "-m",
            "spd",
            "train-target",
            "--config",
            str(config_path),
            "--out",
            str(out),
            "--checkpoint-every",
            "200",
            "--threads",
            "1",
        ]

    subprocess.run(command(tmp_path / "reference"), check=True, capture_output=True)
    out = tmp_path / "killed"
    for attempt in range(3):  # each killed after its second progress line, 1600 steps on
        log = tmp_path / f"attempt{attempt}.log"
        with log.open("w") as handle:
            run = subprocess.Popen(command(out), stdout=handle, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while log.read_text().count("  target seed 0 step") < 2:
            assert run.poll() is None, log.read_text()
            assert time.monotonic() < deadline
            time.sleep(0.01)
        run.send_signal(signal.SIGKILL)
        run.wait()
        assert not RunFolder(out).target.exists() and RunFolder(out).target_state.exists()
    final = subprocess.run(command(out), check=True, capture_output=True, text=True)
    assert "resuming from" in final.stderr
    assert not RunFolder(out).target_state.exists()
    expected = torch.load(RunFolder(tmp_path / "reference").target, weights_only=True)
    resumed = torch.load(RunFolder(out).target, weights_only=True)
    assert expected["info"] == resumed["info"]
    for key, value in expected["state_dict"].items():
        assert torch.equal(value, resumed["state_dict"][key]), key


def test_target_state_saved_without_a_loss_history_resumes_bit_identically(tmp_path):
    """Target-training states saved before target training kept a loss history resume too."""
    config = ResidMLPTargetConfig(**TINY_RESID_MLP["target"])
    state_file = RunFolder(tmp_path).target_state
    reference, _ = resid_mlp.train(config, "cpu", lambda _: None, state_file, checkpoint_every=50)
    payload = torch.load(state_file, weights_only=True)
    assert payload["next_step"] == 150
    del payload["extra"]["history"]
    save_checkpoint(payload, state_file)
    lines: list[str] = []
    resumed, _ = resid_mlp.train(config, "cpu", lines.append, state_file, checkpoint_every=50)
    assert f"resuming from {state_file} at step 150" in lines
    for key, value in reference.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[key]), key
