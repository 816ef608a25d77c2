# Settings come from params.yaml only, validated by the package's own schema before any job runs.
import re
import sys

from spd.config import ConfigError, load_params

PARAMS_FILE = config.get("params", "params.yaml")
try:
    PARAMS = load_params(PARAMS_FILE)
except ConfigError as error:
    sys.exit(f"spd: error: {error}")

EXPERIMENTS = list(PARAMS.experiments)
SEEDS = list(PARAMS.seeds)


wildcard_constraints:
    experiment="|".join(re.escape(name) for name in EXPERIMENTS),
    seed=r"\d+",


def settings(section):
    """An input function: the experiment's settings of one section, as canonical JSON, so that
    Snakemake's params trigger reruns exactly the jobs whose settings changed."""

    def of(wildcards):
        return getattr(PARAMS.experiments[wildcards.experiment], section).model_dump_json()

    return of
