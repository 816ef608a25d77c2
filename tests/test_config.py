import copy

import pytest
import yaml
from conftest import TINY_TMS

from spd.cli import main
from spd.config import ConfigError, load_experiment_config, parse_experiment_config


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
