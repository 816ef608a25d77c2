# Settings come from params.yaml only, validated by the package's own schema before any job runs.
import re
import sys
from pathlib import Path

from spd import runsets
from spd.config import ConfigError, load_params
from spd.families.registry import family
from spd.pipeline import layout

# The one setting Snakemake's config carries is which parameter file to read. Anything else there
# (--configfile FILE, --config KEY=VALUE) would be silently unused, so it is refused by name.
_UNUSED = sorted(set(config) - {"params"})
if _UNUSED:
    sys.exit(
        f"spd: error: Snakemake config keys {', '.join(map(repr, _UNUSED))} are not read: settings "
        "come from the parameter file alone; name another one with --config params=FILE"
    )
PARAMS_FILE = config.get("params", "params.yaml")
try:
    PARAMS = load_params(PARAMS_FILE)
except ConfigError as error:
    sys.exit(f"spd: error: {error}")

SEEDS = list(PARAMS.seeds)
ROBUSTNESS_SEEDS = list(PARAMS.robustness_seeds)
# Every runnable experiment: params.yaml's own, and every sweep point (<experiment>@<sweep>=<value>).
CONFIGS = runsets.all_configs(PARAMS)
MAIN = runsets.main_experiments(PARAMS)  # tms.pdf, its Table 1, robustness.pdf's seed page
RESID_SPD = runsets.experiments_of(PARAMS, family="resid_mlp", method="spd")  # resid_mlp.pdf
APD = runsets.experiments_of(PARAMS, method="apd")
SPD_EXPERIMENTS = runsets.experiments_of(PARAMS, method="spd")  # each with a figure page of its own
# The target families of every SPD run: each gets an evaluate rule writing its own tables.
SPD_FAMILIES = list(dict.fromkeys(c.target.family for c in CONFIGS.values() if c.decomposition.method == "spd"))


def family_of(name):
    return family(CONFIGS[name].target)


# A run's folder and a target's, as patterns; the file names in them are spd.pipeline.layout's.
RUN_FOLDER = "results/runs/{experiment}/seed{seed}"
TARGET_FOLDER = "data/targets/{experiment}"


def figure_inputs(run_family):
    """The run tables a family's figure page waits for: those it reads and every table its
    evaluation writes (some of which the page finds beside the others)."""
    return list(dict.fromkeys(run_family.figure_tables + run_family.evaluation_tables))


def _one_of(names):
    return "|".join(re.escape(name) for name in names) or "(?!)"


def _runs_of(predicate):
    """A wildcard pattern matching the experiments (and sweep points) whose config passes."""
    return _one_of([name for name, config in CONFIGS.items() if predicate(config)])


wildcard_constraints:
    experiment=_one_of(CONFIGS),
    seed=r"\d+",


def report_if_built(path, **kwargs):
    """`report(path, ...)` for a file that exists, else the plain path: `snakemake --report` on a
    partly built tree then reports what is there instead of failing on what is not."""
    return report(path, **kwargs) if Path(path).exists() else path


def run_dirs(names, seeds):
    """Run folders, each once (sweep points at their experiment's own value are its runs)."""
    folders = (str(runsets.run_folder(PARAMS, name, seed)) for name in names for seed in seeds)
    return list(dict.fromkeys(folders))


def target_of(wildcards):
    """Experiments (and sweep points) with equal target settings share one trained target."""
    folder = TARGET_FOLDER.format(experiment=PARAMS.target_source(wildcards.experiment))
    return f"{folder}/{layout.TARGET_FILE}"


def settings(section):
    """An input function: the experiment's settings of one section, as canonical JSON, so that
    Snakemake's params trigger reruns exactly the jobs whose settings changed."""

    def of(wildcards):
        # Defaults left out: a new optional setting in the schema does not rerun every job.
        section_config = getattr(CONFIGS[wildcards.experiment], section)
        return section_config.model_dump_json(exclude_defaults=True)

    return of


# Resource estimates for schedulers (SLURM via the executor plugin; ignored when run locally
# beyond --resources limits). Fitted to measured CPU runs (benchmarks/results/): an SPD step
# costs about 60 ns per batch row x subcomponent x decomposed layer on 2 threads, plus the target's
# dense matmuls (about 14 flops per row x weight, at 40 GFLOP/s); peak memory is about 400 MB of
# runtime plus 64 bytes per row x subcomponent x layer.
def _decomposition_size(name):
    experiment = CONFIGS[name]
    target, decomposition = experiment.target, experiment.decomposition
    layers, weights = family(target).decomposition_size(target)
    return decomposition, decomposition.batch_size * decomposition.C * layers, decomposition.batch_size * weights


def _decomposition_seconds(name):
    decomposition, units, row_weights = _decomposition_size(name)
    return decomposition.steps_trained * (60e-9 * units + 14 * row_weights / 40e9)


def decompose_mem_mb(wildcards):
    _, units, _ = _decomposition_size(wildcards.experiment)
    return 2 * (400 + units * 64 // 1_000_000)  # x2 headroom


def decompose_runtime_min(wildcards):
    return 15 + int(3 * _decomposition_seconds(wildcards.experiment) / 60)  # x3 for slower CPUs


# Job priorities, for the wall time of a run to approach its longest decomposition (the critical
# path): targets first (seconds to minutes each, and every decomposition waits on one), then the
# decompositions costliest first. Otherwise the cheap tms_5-2 runs, whose targets train in seconds,
# take the cores and tms_40-10-id starts last.
TARGETS_FIRST = 1e9  # above any decomposition's expected seconds


def costliest_first(wildcards):
    return _decomposition_seconds(wildcards.experiment)


def cuda_graph_flag(wildcards, resources):
    """' --cuda-graph' when a profile sets resources cuda_graph=1 on cuda, for SPD runs only: APD
    runs eagerly and `spd decompose` refuses the flag for it. Otherwise empty (the CPU command)."""
    wanted = int(resources.cuda_graph) and resources.device == "cuda"
    is_spd = CONFIGS[wildcards.experiment].decomposition.method == "spd"
    return " --cuda-graph" if wanted and is_spd else ""
