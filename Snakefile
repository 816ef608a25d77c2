# spd-pipeline: target training -> SPD decomposition -> ground-truth evaluation, per experiment
# and seed of params.yaml. Rules only wire `python -m spd` calls together.
#
#   snakemake --cores 2                                   everything in params.yaml
#   snakemake --cores 2 results/metrics/tms_5-2/seed0/metrics.parquet     one experiment, one seed
#   snakemake --cores 2 --config params=other.yaml        another parameter file

include: "workflow/rules/common.smk"
include: "workflow/rules/targets.smk"
include: "workflow/rules/decompose.smk"
include: "workflow/rules/evaluate.smk"


rule all:
    input:
        expand(
            "results/metrics/{experiment}/seed{seed}/metrics.parquet",
            experiment=EXPERIMENTS,
            seed=SEEDS,
        ),
