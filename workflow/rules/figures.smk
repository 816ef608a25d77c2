RUN_TABLES = ("metrics", "ci_probes", "weights", "losses")


rule tms_figures:
    input:
        expand(
            "results/runs/{experiment}/seed{seed}/{table}.parquet",
            experiment=EXPERIMENTS,
            seed=SEEDS,
            table=RUN_TABLES,
        ),
    output:
        "results/figures/tms.pdf",
    params:
        runs=expand("results/runs/{experiment}/seed{seed}", experiment=EXPERIMENTS, seed=SEEDS),
    log:
        "logs/figures/tms.log",
    threads: 1
    shell:
        "python -m spd figures {params.runs} --out {output} > {log} 2>&1"
