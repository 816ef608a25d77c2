"""The Family registry: built-in families by name, a user's own by import path, and what a
family without ground truth gets (no verdict)."""

from typing import Literal

import pytest
from pydantic import BaseModel, ConfigDict

from spd.config import ConfigError, ResidMLPTargetConfig, TMSTargetConfig, parse_experiment_config
from spd.evaluate.recovery import verdict
from spd.families.base import Family
from spd.families.registry import family

NO_TRUTH = "test_families:NoTruth"


class NoTruthConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    family: Literal["test_families:NoTruth"]
    n_features: int = 3


class NoTruth(Family):
    """A family with a target and nothing else: no ground truth."""

    name = NO_TRUTH
    config_model = NoTruthConfig

    def build_model(self, config):
        raise NotImplementedError

    def batch_sampler(self, config):
        raise NotImplementedError

    def train(self, config, device, log, state_file, checkpoint_every):
        raise NotImplementedError

    def as_target(self, model, config):
        raise NotImplementedError


def test_built_in_families_by_name_and_by_config():
    tms = TMSTargetConfig(n_features=5, d_hidden=2)
    resid = ResidMLPTargetConfig(family="resid_mlp", n_features=4, d_embed=8, d_mlp=2, n_layers=1)
    assert family("tms") is family(tms) and family(tms).config_model is TMSTargetConfig
    assert family(resid).config_model is ResidMLPTargetConfig
    assert family(tms).expected_alive(tms) == {"linear1": 5, "linear2": 5}


def _experiment(target: dict) -> dict:
    return {
        "name": "x",
        "target": target,
        "decomposition": {"C": 4, "importance_minimality_coeff": 1e-3, "pnorm": 1},
    }


def test_a_family_without_ground_truth_gets_no_verdict():
    config = parse_experiment_config(_experiment({"family": NO_TRUTH}))
    assert isinstance(config.target, NoTruthConfig)
    outcome = verdict(
        [{"layer": "l", "metric": "alive_subcomponents", "value": 3.0}], config.target, "spd", []
    )
    assert outcome.recovered is None
    assert outcome.text == "no verdict: the target family has no ground truth to score against"


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("test_families:Missing", "cannot import Missing from test_families: no such name"),
        (
            "test_families:NoTruthConfig",
            "test_families:NoTruthConfig is not a spd.families.base.Family",
        ),
        ("no_such_package.x:Y", "cannot import no_such_package.x (ModuleNotFoundError"),
    ],
)
def test_a_family_that_cannot_be_imported_is_a_one_line_error(name, message):
    with pytest.raises(ConfigError) as error:
        parse_experiment_config(_experiment({"family": name}))
    assert str(error.value).startswith(f"config: target.family '{name}': {message}")
    assert "\n" not in str(error.value)


def test_a_custom_family_config_error_names_its_key():
    with pytest.raises(ConfigError, match=r"^config: unknown config key 'target.colour'$"):
        parse_experiment_config(_experiment({"family": NO_TRUTH, "colour": "red"}))


class MatchedNoTruthConfig(NoTruthConfig):
    family: Literal["test_families:MatchedNoTruth"]  # type: ignore[assignment]


class MatchedNoTruth(NoTruth):
    """A user's family that declares itself scored by MMCS and ML2R."""

    name = "test_families:MatchedNoTruth"
    config_model = MatchedNoTruthConfig
    feature_matched = True


def test_the_main_job_and_its_checks_follow_the_family_interface_not_its_name():
    from spd import runsets
    from spd.config import parse_params
    from tests.conftest import TINY_APD, TINY_RESID_MLP, TINY_TMS

    def entry(config: dict, **decomposition) -> dict:
        return {k: v for k, v in config.items() if k != "name"} | (
            {"decomposition": decomposition} if decomposition else {}
        )

    spd = TINY_TMS["decomposition"]
    experiments = {
        "toy": entry(TINY_TMS),
        "toy_apd": entry(TINY_TMS, **TINY_APD),
        "resid": entry(TINY_RESID_MLP),
        "own": {"target": {"family": "test_families:MatchedNoTruth"}, "decomposition": spd},
        "own_plain": {"target": {"family": NO_TRUTH}, "decomposition": spd},
    }
    params = parse_params({"seeds": [0], "experiments": experiments})
    assert runsets.main_experiments(params) == ["toy", "own"]
    assert runsets.compared_experiments(params) == ["toy", "toy_apd"]
    for name in ("resid", "own_plain", "toy_apd"):
        with pytest.raises(ConfigError, match=f"'{name}' is not an SPD experiment scored by MMCS"):
            parse_params({"seeds": [0], "experiments": experiments, "main_experiments": [name]})
