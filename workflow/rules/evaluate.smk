# One rule per kind of run, as each writes different tables: an SPD rule per target family (the
# tables its figures read besides CIs, e.g. TMS weights or residual-MLP neuron contributions, as its
# Family names them), and one for APD runs (metrics only: APD has no causal importances).
EVALUATE_COMMAND = (
    "python -m spd evaluate --params {PARAMS_FILE} --experiment {wildcards.experiment}"
    " --target {input.target} --decomposition {input.decomposition}"
    " --out results/runs/{wildcards.experiment}/seed{wildcards.seed}"
    " --threads {threads} > {log} 2>&1"
)


EVALUATE_INPUTS = {
    "target": target_of,
    "decomposition": f"{RUN_FOLDER}/{layout.DECOMPOSITION_FILE}",
    "config": f"{RUN_FOLDER}/{layout.RUN_CONFIG_FILE}",
}


def evaluate_outputs(table_files):
    outputs = {"metrics": f"{RUN_FOLDER}/{layout.METRICS_FILE}"}
    outputs |= {Path(name).stem: f"{RUN_FOLDER}/{name}" for name in table_files}
    outputs["record"] = f"{RUN_FOLDER}/{layout.RUN_RECORD_FILE}"
    return outputs


def spd_runs_of(family_name):
    return _runs_of(lambda c: c.target.family == family_name and c.decomposition.method == "spd")


for _family in SPD_FAMILIES:

    rule:
        name:
            "evaluate_" + re.sub(r"\W+", "_", _family)
        input:
            **EVALUATE_INPUTS,
        output:
            **evaluate_outputs(layout.COMMON_SPD_TABLES + family(_family).evaluation_tables),
        wildcard_constraints:
            experiment=spd_runs_of(_family),
        params:
            settings=settings("evaluation"),
        log:
            "logs/evaluate/{experiment}/seed{seed}.log",
        threads: 1
        resources:
            mem_mb=1500,
            runtime=15,
        shell:
            EVALUATE_COMMAND


rule evaluate_apd:
    input:
        **EVALUATE_INPUTS,
    output:
        **evaluate_outputs(()),
    wildcard_constraints:
        experiment=_runs_of(lambda c: c.decomposition.method == "apd"),
    params:
        settings=settings("evaluation"),
    log:
        "logs/evaluate/{experiment}/seed{seed}.log",
    threads: 1
    resources:
        mem_mb=1500,
        runtime=15,
    shell:
        EVALUATE_COMMAND


rule summary:
    input:
        metrics=f"{RUN_FOLDER}/{layout.METRICS_FILE}",
        losses=f"{RUN_FOLDER}/{layout.LOSSES_FILE}",
        record=f"{RUN_FOLDER}/{layout.RUN_RECORD_FILE}",
    output:
        metrics="results/metrics/{experiment}/seed{seed}.json",
        losses="results/plots/{experiment}/seed{seed}_losses.csv",
    log:
        "logs/summary/{experiment}/seed{seed}.log",
    threads: 1
    shell:
        "python -m spd summary results/runs/{wildcards.experiment}/seed{wildcards.seed}"
        " --metrics {output.metrics} --losses {output.losses} > {log} 2>&1"
