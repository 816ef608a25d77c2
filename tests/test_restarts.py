"""Restarts: candidate initialisations compared by their loss after restart_steps; the best one
is trained to the end, bit-identically to a plain run with its seed, and resumes after a kill."""

from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from conftest import Killed, killed_at, tiny_tms_target

from spd.config import ConfigError, SPDConfig, parse_experiment_config
from spd.decomp.train import Decomposition, candidate_seed, decompose

SPD = SPDConfig(
    C=8, d_gate=4, importance_minimality_coeff=3e-3, pnorm=1, steps=40, batch_size=64, log_every=10
)
RESTARTS = SPD.model_copy(
    update={"restarts": 3, "restart_steps": 20, "seed": 4}
)  # candidate 2 wins


def _candidate_losses(lines: list[str]) -> list[float]:
    return [float(line.split("loss ")[1].split()[0]) for line in lines if "after 20 steps" in line]


def _assert_same_run(a, b) -> None:
    expected, got = a.model.state_dict(), b.model.state_dict()
    assert expected.keys() == got.keys()
    for key in expected:
        assert torch.equal(expected[key], got[key]), key
    assert a.loss_history.equals(b.loss_history)


def test_the_candidate_with_the_lowest_loss_is_finished_like_a_plain_run_with_its_seed(tmp_path):
    lines: list[str] = []
    result = decompose(
        tiny_tms_target(), RESTARTS, lines.append, tmp_path / "state.pt", checkpoint_every=7
    )
    losses = _candidate_losses(lines)
    assert len(losses) == 3 and len(set(losses)) == 3
    chosen = min(range(3), key=losses.__getitem__)
    assert chosen != 0  # so that the run below is not the plain run with the base seed
    assert (
        f"restarts: candidate {chosen + 1} (seed {candidate_seed(4, chosen)}) trains to the end"
        in lines
    )
    plain = decompose(
        tiny_tms_target(),
        SPD.model_copy(update={"seed": candidate_seed(4, chosen)}),
        lambda _: None,
    )
    _assert_same_run(plain, result)
    assert list(tmp_path.iterdir()) == []  # candidate states and the recorded choice are removed


def _killed_after_the_choice_then_resumed(state: Path, log: Callable[[str], None]) -> Decomposition:
    """The restarts run, killed at step 31 of 40 (saved at step 28), then rerun to the end."""
    with pytest.raises(Killed):
        decompose(tiny_tms_target(), RESTARTS, killed_at("step 31/40"), state, checkpoint_every=7)
    return decompose(tiny_tms_target(), RESTARTS, log, state, checkpoint_every=7)


def test_a_run_killed_after_the_choice_resumes_without_retraining_candidates(tmp_path):
    lines: list[str] = []
    resumed = _killed_after_the_choice_then_resumed(tmp_path / "state.pt", lines.append)
    assert not any("restart candidate" in line for line in lines)
    assert any(line.startswith("resuming from") and "at step 28" in line for line in lines)
    _assert_same_run(decompose(tiny_tms_target(), RESTARTS, lambda _: None), resumed)


def test_the_seconds_count_every_candidates_steps_and_survive_a_kill(step_clock, tmp_path):
    # three candidates of 20 steps each, then 20 more for the chosen one; a second a step
    assert decompose(tiny_tms_target(), RESTARTS, lambda _: None).seconds == 80.0
    # steps 28-30 ran before the kill and again after it: only the run that was kept counts
    resumed = _killed_after_the_choice_then_resumed(tmp_path / "state.pt", lambda _: None)
    assert resumed.seconds == 80.0


def test_restart_steps_must_end_before_the_run():
    raw = {
        "name": "x",
        "target": {"family": "tms", "n_features": 5, "d_hidden": 2},
        "decomposition": {**SPD.model_dump(), "restarts": 2, "restart_steps": 40},
    }
    with pytest.raises(ConfigError, match="restart_steps \\(40\\) must be below steps \\(40\\)"):
        parse_experiment_config(raw)


def test_only_the_live_decomposition_hooks_the_target():
    target = tiny_tms_target()
    layers = [target.model.get_submodule(name) for name in target.decomposed_modules]
    first = decompose(target, RESTARTS, lambda _: None)
    assert [len(layer._forward_hooks) for layer in layers] == [1] * len(
        layers
    )  # the chosen candidate's
    first.model.remove_hooks()
    second = decompose(target, SPD, lambda _: None)
    assert [len(layer._forward_hooks) for layer in layers] == [1] * len(layers)
    second.model.remove_hooks()
    second.model.remove_hooks()  # twice is harmless
    assert all(not layer._forward_hooks for layer in layers)
