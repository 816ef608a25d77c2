# The run tables each family's figure page reads, as its Family names them. tms.pdf and
# resid_mlp.pdf are those two families' paper figures, so they name their family.
TMS_TABLES = figure_inputs(family("tms"))
RESID_MLP_TABLES = figure_inputs(family("resid_mlp"))
TMS_RUNS = run_dirs(MAIN, SEEDS)
COMPARED = runsets.compared_experiments(PARAMS)  # SPD vs APD: table1, method_comparison.pdf


def tables(runs, names):
    return [f"{run}/{name}" for run in runs for name in names]


rule tms_figures:
    input:
        runs=tables(TMS_RUNS, TMS_TABLES),
        records=tables(TMS_RUNS, [layout.RUN_RECORD_FILE]),  # each page's verdict
        table1="results/tables/tms_table1.parquet",
    output:
        report_if_built(
            "results/figures/tms.pdf",
            caption="../report/tms_figures.rst",
            category="TMS figures",
        ),
    params:
        runs=TMS_RUNS,
    log:
        "logs/figures/tms.log",
    threads: 1
    shell:
        "python -m spd figures {params.runs} --table1 {input.table1} --out {output} > {log} 2>&1"


rule tms_table1:
    input:
        tables(TMS_RUNS, [layout.METRICS_FILE]),
    output:
        markdown=report_if_built(
            "results/tables/tms_table1.md", caption="../report/tms_table1.rst", category="Tables"
        ),
        table="results/tables/tms_table1.parquet",
    params:
        runs=TMS_RUNS,
    log:
        "logs/tables/tms_table1.log",
    threads: 1
    shell:
        "python -m spd table1 {params.runs} --out results/tables/tms_table1 > {log} 2>&1"


rule resid_mlp_figures:
    input:
        tables(run_dirs(RESID_SPD, SEEDS), RESID_MLP_TABLES),
    output:
        report_if_built(
            "results/figures/resid_mlp.pdf",
            caption="../report/resid_mlp_figures.rst",
            category="Residual MLP figures",
        ),
    params:
        runs=run_dirs(RESID_SPD, SEEDS),
    log:
        "logs/figures/resid_mlp.log",
    threads: 1
    shell:
        "python -m spd figures {params.runs} --out {output} > {log} 2>&1"


use rule resid_mlp_figures as experiment_figures with:
    input:
        lambda wildcards: tables(
            run_dirs([wildcards.experiment], SEEDS), figure_inputs(family_of(wildcards.experiment))
        ),
    output:
        "results/figures/{experiment}.pdf",
    wildcard_constraints:
        experiment=_one_of(SPD_EXPERIMENTS),
    params:
        runs=lambda wildcards: run_dirs([wildcards.experiment], SEEDS),
    log:
        "logs/figures/{experiment}.log",


def sweep_runs(wildcards):
    return run_dirs(runsets.sweep_points_of(PARAMS, wildcards.sweep, wildcards.experiment), SEEDS)


rule sweep_figures:
    input:
        lambda wildcards: tables(
            sweep_runs(wildcards),
            figure_inputs(family_of(wildcards.experiment)),
        ),
    output:
        report(
            "results/figures/{experiment}_{sweep}_sweep.pdf",
            caption="../report/sweep_figures.rst",
            category="Sweeps",
        ),
    wildcard_constraints:
        sweep=_one_of(PARAMS.sweeps),
    log:
        "logs/figures/{experiment}_{sweep}_sweep.log",
    threads: 1
    shell:
        "python -m spd sweep-figures --params {PARAMS_FILE} --sweep {wildcards.sweep}"
        " --experiment {wildcards.experiment} --out {output} > {log} 2>&1"


rule robustness_figures:
    input:
        tables(run_dirs(MAIN, ROBUSTNESS_SEEDS), [layout.METRICS_FILE]),
        tables(run_dirs(runsets.feature_matched_sweep_points(PARAMS), SEEDS), [layout.METRICS_FILE]),
    output:
        report_if_built(
            "results/figures/robustness.pdf",
            caption="../report/robustness.rst",
            category="Robustness",
        ),
    log:
        "logs/figures/robustness.log",
    threads: 1
    shell:
        "python -m spd robustness --params {PARAMS_FILE} --out {output} > {log} 2>&1"


rule table1:
    input:
        tables(run_dirs(COMPARED, ROBUSTNESS_SEEDS), [layout.METRICS_FILE]),
    output:
        markdown=report_if_built("results/tables/table1.md", caption="../report/table1.rst", category="Tables"),
        table="results/tables/table1.parquet",
    params:
        runs=run_dirs(COMPARED, ROBUSTNESS_SEEDS),
    log:
        "logs/tables/table1.log",
    threads: 1
    shell:
        "python -m spd table1 {params.runs} --out results/tables/table1 > {log} 2>&1"


rule method_comparison:
    input:
        tables(run_dirs(COMPARED, ROBUSTNESS_SEEDS), [layout.METRICS_FILE, layout.LOSSES_FILE]),
        expand(
            "benchmarks/runs/decompose/{experiment}/seed{seed}.tsv",
            experiment=COMPARED,
            seed=ROBUSTNESS_SEEDS,
        ),
    output:
        report_if_built(
            "results/figures/method_comparison.pdf",
            caption="../report/method_comparison.rst",
            category="SPD vs APD",
        ),
    log:
        "logs/figures/method_comparison.log",
    threads: 1
    shell:
        "python -m spd compare --params {PARAMS_FILE} --out {output} > {log} 2>&1"
