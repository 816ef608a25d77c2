import copy
from pathlib import Path

import pytest
import yaml
from conftest import TINY_TMS

from spd.cli import main
from spd.config import ConfigError, load_experiment_config, load_params, parse_experiment_config


def _with(section: str, key: str, value):
    raw = copy.deepcopy(TINY_TMS)
    raw[section][key] = value
    return raw


@pytest.mark.parametrize(
    "raw, key",
    [
        (_with("decomposition", "Cx", 3), "decomposition.Cx"),
        (_with("decomposition", "C", 0), "decomposition.C"),
        (_with("decomposition", "C", -4), "decomposition.C"),
        (_with("decomposition", "C", "many"), "decomposition.C"),
        (_with("decomposition", "importance_minimality_coeff", -1e-3), "decomposition.importance_minimality_coeff"),
        (_with("decomposition", "stochastic_recon_coeff", -1), "decomposition.stochastic_recon_coeff"),
        (_with("decomposition", "pnorm", 0), "decomposition.pnorm"),
        (_with("decomposition", "lr_schedule", "linear"), "decomposition.lr_schedule"),
        (_with("target", "feature_probability", 1.5), "target.feature_probability"),
        (_with("target", "n_features", 2.5), "target.n_features"),
        (_with("target", "family", "gpt2"), "target.family"),
        (_with("evaluation", "alive_threshold", 0), "evaluation.alive_threshold"),
    ],
)
def test_bad_config_names_the_key(raw, key):
    with pytest.raises(ConfigError, match=rf"'{key}'"):
        parse_experiment_config(raw)


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_experiment_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_experiment_config(bad)


def test_cli_reports_bad_key_in_one_line_and_exits_2(tmp_path, capsys):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(_with("decomposition", "C", 0)))
    out = tmp_path / "out"
    assert main(["run", "--config", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "decomposition.C" in err
    assert not out.exists()  # nothing computed, nothing written


def test_cli_override_is_validated(tiny_config_path, tmp_path, capsys):
    assert main(["run", "--config", str(tiny_config_path), "--out", str(tmp_path / "o"), "--steps", "0"]) == 2
    assert "decomposition.steps" in capsys.readouterr().err


def _params(tmp_path, experiments):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump({"seeds": [0, 1], "experiments": experiments}))
    return path


def test_params_file_names_the_experiment_in_bad_keys(tmp_path):
    body = {k: v for k, v in _with("decomposition", "C", 0).items() if k != "name"}
    with pytest.raises(ConfigError, match=r"'experiments.tiny.decomposition.C'"):
        load_params(_params(tmp_path, {"tiny": body}))


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
