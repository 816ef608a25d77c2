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
        # Defaults left out: a new optional setting in the schema does not rerun every job.
        section_config = getattr(PARAMS.experiments[wildcards.experiment], section)
        return section_config.model_dump_json(exclude_defaults=True)

    return of


# Resource estimates for schedulers (SLURM via the executor plugin; ignored when run locally
# beyond --resources limits). Fitted to the measured CPU runs (README, "Results"): an SPD step
# costs about 60 ns per batch row x subcomponent x decomposed layer on 2 threads, and peak memory
# is about 400 MB of runtime plus 64 bytes per row x subcomponent x layer.
def _spd_size(wildcards):
    experiment = PARAMS.experiments[wildcards.experiment]
    layers = 2 + int(experiment.target.identity_layer)
    return experiment.decomposition, experiment.decomposition.batch_size * experiment.decomposition.C * layers


def decompose_mem_mb(wildcards):
    _, units = _spd_size(wildcards)
    return 2 * (400 + units * 64 // 1_000_000)  # x2 headroom


def decompose_runtime_min(wildcards):
    spd, units = _spd_size(wildcards)
    step_seconds = 60e-9 * units
    return 15 + int(3 * spd.steps * step_seconds / 60)  # x3 headroom for slower CPUs
