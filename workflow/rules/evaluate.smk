rule evaluate:
    input:
        target="data/targets/{experiment}/target.pt",
        decomposition="results/decompositions/{experiment}/seed{seed}/decomposition.pt",
    output:
        "results/metrics/{experiment}/seed{seed}/metrics.parquet",
    params:
        params_file=PARAMS_FILE,
        settings=settings("evaluation"),
    log:
        "logs/evaluate/{experiment}/seed{seed}.log",
    threads: 1
    shell:
        "python -m spd evaluate --params {params.params_file} --experiment {wildcards.experiment}"
        " --target {input.target} --decomposition {input.decomposition}"
        " --out results/metrics/{wildcards.experiment}/seed{wildcards.seed}"
        " --threads {threads} > {log} 2>&1"
