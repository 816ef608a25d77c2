rule evaluate:
    input:
        target="data/targets/{experiment}/target.pt",
        decomposition="results/runs/{experiment}/seed{seed}/decomposition.pt",
    output:
        metrics="results/runs/{experiment}/seed{seed}/metrics.parquet",
        ci_probes="results/runs/{experiment}/seed{seed}/ci_probes.parquet",
        ci_histogram="results/runs/{experiment}/seed{seed}/ci_histogram.parquet",
        weights="results/runs/{experiment}/seed{seed}/weights.parquet",
    params:
        params_file=PARAMS_FILE,
        settings=settings("evaluation"),
    log:
        "logs/evaluate/{experiment}/seed{seed}.log",
    threads: 1
    resources:
        mem_mb=1500,
        runtime=15,
    shell:
        "python -m spd evaluate --params {params.params_file} --experiment {wildcards.experiment}"
        " --target {input.target} --decomposition {input.decomposition}"
        " --out results/runs/{wildcards.experiment}/seed{wildcards.seed}"
        " --threads {threads} > {log} 2>&1"


rule summary:
    input:
        metrics="results/runs/{experiment}/seed{seed}/metrics.parquet",
        losses="results/runs/{experiment}/seed{seed}/losses.parquet",
    output:
        metrics="results/metrics/{experiment}/seed{seed}.json",
        losses="results/plots/{experiment}/seed{seed}_losses.csv",
    log:
        "logs/summary/{experiment}/seed{seed}.log",
    threads: 1
    shell:
        "python -m spd summary results/runs/{wildcards.experiment}/seed{wildcards.seed}"
        " --metrics {output.metrics} --losses {output.losses} > {log} 2>&1"
