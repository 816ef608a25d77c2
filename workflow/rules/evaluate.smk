# One rule per kind of run, as each writes different tables: TMS SPD runs (weights for the figures),
# residual-MLP SPD runs (neuron contributions), APD runs (metrics only: APD has no causal importances).
rule evaluate:
    input:
        target=target_of,
        decomposition="results/runs/{experiment}/seed{seed}/decomposition.pt",
    output:
        metrics="results/runs/{experiment}/seed{seed}/metrics.parquet",
        ci_probes="results/runs/{experiment}/seed{seed}/ci_probes.parquet",
        ci_histogram="results/runs/{experiment}/seed{seed}/ci_histogram.parquet",
        weights="results/runs/{experiment}/seed{seed}/weights.parquet",
        ci_curves="results/runs/{experiment}/seed{seed}/ci_curves.parquet",
        record="results/runs/{experiment}/seed{seed}/run.json",
    wildcard_constraints:
        experiment=_runs_of(lambda c: c.target.family == "tms" and c.decomposition.method == "spd"),
    params:
        settings=settings("evaluation"),
    log:
        "logs/evaluate/{experiment}/seed{seed}.log",
    threads: 1
    resources:
        mem_mb=1500,
        runtime=15,
    shell:
        "python -m spd evaluate --params {PARAMS_FILE} --experiment {wildcards.experiment}"
        " --target {input.target} --decomposition {input.decomposition}"
        " --out results/runs/{wildcards.experiment}/seed{wildcards.seed}"
        " --threads {threads} > {log} 2>&1"


use rule evaluate as evaluate_resid_mlp with:
    output:
        metrics="results/runs/{experiment}/seed{seed}/metrics.parquet",
        ci_probes="results/runs/{experiment}/seed{seed}/ci_probes.parquet",
        ci_histogram="results/runs/{experiment}/seed{seed}/ci_histogram.parquet",
        neuron_contributions="results/runs/{experiment}/seed{seed}/neuron_contributions.parquet",
        record="results/runs/{experiment}/seed{seed}/run.json",
    wildcard_constraints:
        experiment=_runs_of(lambda c: c.target.family == "resid_mlp" and c.decomposition.method == "spd"),


use rule evaluate as evaluate_apd with:
    output:
        metrics="results/runs/{experiment}/seed{seed}/metrics.parquet",
        record="results/runs/{experiment}/seed{seed}/run.json",
    wildcard_constraints:
        experiment=_runs_of(lambda c: c.decomposition.method == "apd"),


rule summary:
    input:
        metrics="results/runs/{experiment}/seed{seed}/metrics.parquet",
        losses="results/runs/{experiment}/seed{seed}/losses.parquet",
        record="results/runs/{experiment}/seed{seed}/run.json",
    output:
        metrics="results/metrics/{experiment}/seed{seed}.json",
        losses="results/plots/{experiment}/seed{seed}_losses.csv",
    log:
        "logs/summary/{experiment}/seed{seed}.log",
    threads: 1
    shell:
        "python -m spd summary results/runs/{wildcards.experiment}/seed{wildcards.seed}"
        " --metrics {output.metrics} --losses {output.losses} > {log} 2>&1"
