from pathlib import Path

import pytest
import yaml
from conftest import TINY_TMS

from spd.cli import main
from spd.config import ConfigError, load_experiment_config, load_params


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_experiment_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_experiment_config(bad)


def test_cli_override_is_validated(tiny_config_path, tmp_path, capsys):
    assert main(["run", "--config", str(tiny_config_path), "--out", str(tmp_path / "o"), "--steps", "0"]) == 2
    assert "decomposition.steps" in capsys.readouterr().err


def _params(tmp_path, experiments):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump({"seeds": [0, 1], "experiments": experiments}))
    return path


def test_params_experiment_lookup(tmp_path, capsys):
    body = {k: v for k, v in TINY_TMS.items() if k != "name"}
    params = load_params(_params(tmp_path, {"tiny": body}))
    assert params.seeds == (0, 1)
    assert params.experiment("tiny").name == "tiny"
    with pytest.raises(ConfigError, match=r"unknown experiment 'big' \(params has: tiny\)"):
        params.experiment("big")
    path = _params(tmp_path, {"tiny": body})
    assert main(["train-target", "--params", str(path), "--experiment", "nope", "--out", str(tmp_path)]) == 2
    assert "unknown experiment 'nope'" in capsys.readouterr().err


def test_repository_params_file_is_valid():
    params = load_params(Path(__file__).parents[1] / "params.yaml")
    assert set(params.experiments) == {"tms_5-2", "tms_5-2-id", "tms_40-10", "tms_40-10-id"}
    assert params.experiment("tms_5-2-id").target.identity_layer
    assert not params.experiment("tms_5-2").target.identity_layer
