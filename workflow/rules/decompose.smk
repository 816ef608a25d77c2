rule decompose:
    input:
        target=target_of,
    output:
        decomposition="results/runs/{experiment}/seed{seed}/decomposition.pt",
        losses="results/runs/{experiment}/seed{seed}/losses.parquet",
    params:
        params_file=PARAMS_FILE,
        settings=settings("decomposition"),
    log:
        "logs/decompose/{experiment}/seed{seed}.log",
    benchmark:
        "benchmarks/runs/decompose/{experiment}/seed{seed}.tsv"
    threads: 1
    priority: costliest_first
    resources:
        mem_mb=decompose_mem_mb,
        runtime=decompose_runtime_min,
        device="cpu",  # a profile may set cuda (and a GPU request) for this rule
    shell:
        "python -m spd decompose --params {params.params_file} --experiment {wildcards.experiment}"
        " --seed {wildcards.seed} --target {input.target}"
        " --out results/runs/{wildcards.experiment}/seed{wildcards.seed}"
        " --threads {threads} --device {resources.device} > {log} 2>&1"
