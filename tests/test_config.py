import copy
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
    assert (
        main(
            ["run", "--config", str(tiny_config_path), "--out", str(tmp_path / "o"), "--steps", "0"]
        )
        == 2
    )
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
    assert (
        main(
            ["train-target", "--params", str(path), "--experiment", "nope", "--out", str(tmp_path)]
        )
        == 2
    )
    assert "unknown experiment 'nope'" in capsys.readouterr().err


def test_repository_params_file_is_valid():
    params = load_params(Path(__file__).parents[1] / "params.yaml")
    assert set(params.experiments) == {
        "tms_5-2",
        "tms_5-2-id",
        "tms_40-10",
        "tms_40-10-id",
        "tms_5-2_apd",
        "tms_40-10_apd",
        "tms_40-10_apd_apd-target",
        "tms_5-2-id_apd",
        "tms_40-10-id_apd",
        "resid_mlp1",
        "resid_mlp2",
        "resid_mlp3",
        "resid_mlp1_apd",
        "tms_5-2_joint-tying",
        "tms_5-2-id_joint-tying",
    }
    assert params.target_source("tms_40-10_apd") == "tms_40-10"
    assert params.target_source("tms_40-10-id_apd") == "tms_40-10-id"
    assert params.main_experiments == ("tms_5-2", "tms_5-2-id", "tms_40-10", "tms_40-10-id")
    for name in params.main_experiments:  # paper mode as the reference implementation runs it
        assert params.experiment(name).target.tied_adam == "per_layer"
        assert params.experiment(name).decomposition.tied_adam == "per_layer"
        assert params.experiment(name).target.zero_bias_init == name.startswith("tms_40-10")
        assert params.experiment(name).decomposition.restarts == 1
    assert params.experiment("tms_5-2-id_joint-tying").target.tied_adam == "joint"
    assert len(params.sweeps["beta3"].experiments["resid_mlp1"]) == 5
    assert params.experiment("tms_5-2-id").target.identity_layer
    assert not params.experiment("tms_5-2").target.identity_layer


def _sweep_params(tmp_path, sweeps):
    body = {k: v for k, v in TINY_TMS.items() if k != "name"}
    other = copy.deepcopy(body)
    other["decomposition"]["C"] = 9
    raw = {"experiments": {"tiny": body, "tiny_other": other}, "sweeps": sweeps}
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_sweep_points_are_experiments_sharing_their_target_and_default_run(tmp_path):
    sweeps = {"C": {"setting": "C", "experiments": {"tiny": [4, 8, 16]}}}
    params = load_params(_sweep_params(tmp_path, sweeps))
    assert list(params.sweep_points()) == ["tiny@C=4", "tiny@C=8", "tiny@C=16"]
    point = params.experiment("tiny@C=16")
    assert point.name == "tiny@C=16" and point.decomposition.C == 16
    assert point.decomposition.steps == TINY_TMS["decomposition"]["steps"]
    assert params.target_source("tiny@C=16") == "tiny"
    assert params.target_source("tiny_other") == "tiny"  # equal target settings: one target
    assert params.run_source("tiny@C=8") == "tiny"  # TINY_TMS's own C: the experiment's run
    assert params.run_source("tiny@C=4") == "tiny@C=4"
    assert params.robustness_seeds == (0, 1, 2, 3, 4)


@pytest.mark.parametrize(
    ("sweeps", "message"),
    [
        (
            {"C": {"setting": "C", "experiments": {"tiny": [0]}}},
            r"sweeps\.C\.experiments\.tiny: bad config key 'decomposition\.C'",
        ),
        (
            {"C": {"setting": "width", "experiments": {"tiny": [1]}}},
            r"bad config key 'sweeps\.C\.setting': 'width' is not a decomposition setting",
        ),
        (
            {"C": {"setting": "C", "experiments": {"huge": [1]}}},
            r"bad config key 'sweeps\.C\.experiments\.huge': no experiment named 'huge'",
        ),
        (
            {"C": {"setting": "C", "experiments": {"tiny": [4]}, "color": 1}},
            r"unknown config key 'sweeps\.C\.color'",
        ),
    ],
)
def test_bad_sweeps_fail_at_load_naming_the_key(tmp_path, sweeps, message):
    with pytest.raises(ConfigError, match=message):
        load_params(_sweep_params(tmp_path, sweeps))


def test_a_typo_is_named_with_every_place_it_occurs_and_the_key_it_resembles(tmp_path):
    body = {k: copy.deepcopy(v) for k, v in TINY_TMS.items() if k != "name"}
    body["decomposition"]["importance_minimality_coef"] = body["decomposition"].pop(
        "importance_minimality_coeff"
    )
    other = copy.deepcopy(body)
    other["target"]["n_featurs"] = 3
    with pytest.raises(ConfigError) as raised:
        load_params(_params(tmp_path, {"tiny": body, "other": other}))
    message = str(raised.value)
    assert "\n" not in message
    for key in (
        "tiny.decomposition.importance_minimality_coef",
        "other.decomposition.importance_minimality_coef",
    ):
        assert (
            f"unknown config key 'experiments.{key}' (did you mean 'importance_minimality_coeff'?)"
            in message
        )
    assert (
        "unknown config key 'experiments.other.target.n_featurs' (did you mean 'n_features'?)"
        in message
    )
    assert "Field required" not in message


@pytest.mark.parametrize(
    ("section", "key", "value", "message"),
    [
        (
            "target",
            "C",
            5,
            "unknown config key 'experiments.tiny.target.C' ('C' is a decomposition key)",
        ),
        (
            "decomposition",
            "n_feature",
            5,
            "'experiments.tiny.decomposition.n_feature' ('n_features' is a target key)",
        ),
        (
            "decomposition",
            "method",
            "apdd",
            "'experiments.tiny.decomposition.method': 'apdd' is not one of 'spd', 'apd'",
        ),
        (
            "target",
            "family",
            "tmss",
            "'experiments.tiny.target.family': 'tmss' is not one of 'tms', 'resid_mlp'",
        ),
    ],
)
def test_a_key_in_the_wrong_section_or_a_bad_tag_says_where_it_belongs(
    tmp_path, section, key, value, message
):
    body = {k: copy.deepcopy(v) for k, v in TINY_TMS.items() if k != "name"}
    body[section][key] = value
    with pytest.raises(ConfigError) as raised:
        load_params(_params(tmp_path, {"tiny": body}))
    assert message in str(raised.value)


def test_a_params_file_given_as_one_experiment_says_so(tmp_path):
    body = {k: v for k, v in TINY_TMS.items() if k != "name"}
    with pytest.raises(ConfigError, match=r"a params file \(it has 'experiments'\).*--params"):
        load_experiment_config(_params(tmp_path, {"tiny": body}))


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("tiny@beta3=1.0e-3", "did you mean 'tiny@beta3=0.001'?"),
        ("tiny@beta3=1e-3", "did you mean 'tiny@beta3=0.001'?"),
        ("tiny@beta3=2e-3", "sweep beta3 of tiny has: tiny@beta3=0.0001, tiny@beta3=0.001"),
    ],
)
def test_an_unknown_sweep_point_names_the_points_of_its_sweep(tmp_path, name, message):
    sweeps = {
        "beta3": {"setting": "importance_minimality_coeff", "experiments": {"tiny": [1e-4, 1e-3]}}
    }
    params = load_params(_sweep_params(tmp_path, sweeps))
    with pytest.raises(ConfigError) as raised:
        params.experiment(name)
    assert str(raised.value) == f"unknown experiment '{name}' ({message})"
