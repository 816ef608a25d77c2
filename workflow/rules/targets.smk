rule train_target:
    output:
        f"{TARGET_FOLDER}/{layout.TARGET_FILE}",
    params:
        settings=settings("target"),
    log:
        "logs/train_target/{experiment}.log",
    benchmark:
        "benchmarks/runs/train_target/{experiment}.tsv"
    threads: 1
    priority: TARGETS_FIRST
    resources:
        mem_mb=1000,
        runtime=30,
    shell:
        "python -m spd train-target --params {PARAMS_FILE} --experiment {wildcards.experiment}"
        " --out data/targets/{wildcards.experiment} --threads {threads} > {log} 2>&1"
