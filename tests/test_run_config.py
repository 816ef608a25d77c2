"""A run folder keeps the config it was decomposed with (config.yaml, overrides applied), and
evaluation reads it from there: an experiment named as well must be the run's."""

import copy
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import TINY_TMS

from spd.cli import main
from spd.config import load_experiment_config, parse_experiment_config
from spd.evaluate.run_record import read_run_record
from spd.pipeline.evaluate import evaluate
from spd.pipeline.layout import RunFolder
from spd.pipeline.run_config import run_config


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> RunFolder:
    """A finished tiny run, decomposed with --seed 2 and --steps 20."""
    root = tmp_path_factory.mktemp("stored")
    (root / "tiny.yaml").write_text(yaml.safe_dump(TINY_TMS))
    argv = ["run", "--config", str(root / "tiny.yaml"), "--out", str(root / "run")]
    assert main([*argv, "--seed", "2", "--steps", "20"]) == 0
    return RunFolder(root / "run")


def _config_file(tmp_path: Path, **changes: dict) -> str:
    raw = copy.deepcopy(TINY_TMS)
    for section, values in changes.items():
        if isinstance(values, dict):
            raw[section] |= values
        else:
            raw[section] = values
    path = tmp_path / "experiment.yaml"
    path.write_text(yaml.safe_dump(raw))
    return str(path)


def _evaluate(run: RunFolder, out: Path, *source: str) -> int:
    argv = ["evaluate", *source, "--target", str(run.target)]
    return main([*argv, "--decomposition", str(run.decomposition), "--out", str(out)])


def test_decompose_stores_the_config_with_its_overrides(run: RunFolder):
    raw = copy.deepcopy(TINY_TMS)
    raw["decomposition"] |= {"seed": 2, "steps": 20}
    assert load_experiment_config(run.config) == parse_experiment_config(raw)


def test_evaluate_without_an_experiment_scores_by_the_runs_config(run: RunFolder, tmp_path):
    assert _evaluate(run, tmp_path / "again") == 0
    again = RunFolder(tmp_path / "again")
    pd.testing.assert_frame_equal(pd.read_parquet(again.metrics), pd.read_parquet(run.metrics))
    # A stage is a plain function: the same run scored by calling it directly.
    direct = RunFolder(tmp_path / "direct")
    direct.path.mkdir()
    evaluate(run_config(run, None), run.target, run.decomposition, direct.path, "cpu")
    assert direct.metrics.read_bytes() == again.metrics.read_bytes()


def test_the_named_experiments_evaluation_settings_apply(run: RunFolder, tmp_path):
    # The experiment's own seed and steps (0, 30) are not the run's (2, 20): overridable.
    config = _config_file(tmp_path, evaluation={"n_random": 100})
    assert _evaluate(run, tmp_path / "out", "--config", config) == 0
    record = read_run_record(RunFolder(tmp_path / "out").record)
    assert record["config"]["evaluation"]["n_random"] == 100
    assert record["config"]["decomposition"]["seed"] == 2 and record["steps"] == 20


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"name": "other"}, "a run of experiment 'tms_tiny', not of 'other'"),
        ({"decomposition": {"C": 9}}, "made with decomposition C=8 (experiment: 9)"),
        ({"target": {"d_hidden": 3}}, "trained with target d_hidden=2 (experiment: 3)"),
    ],
    ids=["name", "decomposition", "target"],
)
def test_evaluate_refuses_an_experiment_that_is_not_the_runs(
    run: RunFolder, tmp_path, capsys, changes, message
):
    capsys.readouterr()
    code = _evaluate(run, tmp_path / "out", "--config", _config_file(tmp_path, **changes))
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert err[0].startswith(f"spd: error: {run.config}: ") and message in err[0]
    assert not RunFolder(tmp_path / "out").metrics.exists()


def test_a_run_folder_without_its_config(run: RunFolder, tmp_path, capsys):
    """Folders decomposed before runs stored their config evaluate given their experiment, and
    otherwise say which file is missing and what writes it."""
    old = RunFolder(tmp_path / "old")
    old.path.mkdir()
    for path in (run.target, run.decomposition, run.losses):
        shutil.copy(path, old.path)
    capsys.readouterr()
    assert _evaluate(old, old.path) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{old.config}: not found" in err[0] and "`spd decompose`" in err[0]
    assert _evaluate(old, old.path, "--config", _config_file(tmp_path)) == 0
    pd.testing.assert_frame_equal(pd.read_parquet(old.metrics), pd.read_parquet(run.metrics))
