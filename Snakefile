# spd-pipeline: target training -> SPD decomposition -> ground-truth evaluation, per experiment
# and seed of params.yaml. Rules only wire `python -m spd` calls together.
#
#   snakemake --cores 2 results/figures/tms.pdf           everything in params.yaml, and the figures
#   snakemake --cores 2                                     the figures, Table 1, metric summaries
#   snakemake --report results/report.html                  an HTML report of figures and tables
#   snakemake --cores 1 docs/results.md                     the results report, from the summaries
#   snakemake --cores 2 results/runs/tms_5-2/seed0/metrics.parquet     one experiment, one seed
#   snakemake --cores 2 --config params=other.yaml        another parameter file

report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/targets.smk"
include: "workflow/rules/decompose.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/report.smk"


rule all:
    input:
        "results/figures/tms.pdf",
        "results/tables/tms_table1.md",
        expand("results/metrics/{experiment}/seed{seed}.json", experiment=MAIN, seed=SEEDS),
