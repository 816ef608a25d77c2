RUN_TABLES = ("metrics", "ci_probes", "ci_histogram", "weights", "losses")
RUN_DIRS = expand("results/runs/{experiment}/seed{seed}", experiment=EXPERIMENTS, seed=SEEDS)


rule tms_figures:
    input:
        runs=expand("{run}/{table}.parquet", run=RUN_DIRS, table=RUN_TABLES),
        table1="results/tables/tms_table1.parquet",
    output:
        report(
            "results/figures/tms.pdf",
            caption="../report/tms_figures.rst",
            category="TMS figures",
        ),
    params:
        runs=RUN_DIRS,
    log:
        "logs/figures/tms.log",
    threads: 1
    shell:
        "python -m spd figures {params.runs} --table1 {input.table1} --out {output} > {log} 2>&1"


rule tms_table1:
    input:
        expand("{run}/metrics.parquet", run=RUN_DIRS),
    output:
        markdown=report(
            "results/tables/tms_table1.md", caption="../report/tms_table1.rst", category="Tables"
        ),
        table="results/tables/tms_table1.parquet",
    params:
        runs=RUN_DIRS,
    log:
        "logs/tables/tms_table1.log",
    threads: 1
    shell:
        "python -m spd table1 {params.runs} --out results/tables/tms_table1 > {log} 2>&1"
