rule decompose:
    input:
        target=target_of,
    output:
        decomposition=f"{RUN_FOLDER}/{layout.DECOMPOSITION_FILE}",
        losses=f"{RUN_FOLDER}/{layout.LOSSES_FILE}",
        config=f"{RUN_FOLDER}/{layout.RUN_CONFIG_FILE}",  # the run's config, read by evaluate
    params:
        settings=settings("decomposition"),
        cuda_graph=cuda_graph_flag,
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
        cuda_graph=0,  # 1: record SPD steps as CUDA graphs (with device cuda; profiles/gpu sets it)
        gpu_slots=0,  # GPU slots taken: none on CPU; profiles/gpu takes 1 a job and caps the total
    shell:
        "python -m spd decompose --params {PARAMS_FILE} --experiment {wildcards.experiment}"
        " --seed {wildcards.seed} --target {input.target}"
        " --out results/runs/{wildcards.experiment}/seed{wildcards.seed}"
        " --threads {threads} --device {resources.device}{params.cuda_graph} > {log} 2>&1"
