# The results report: built from the committed run summaries alone (no run folder needed), so a
# fresh clone rebuilds it; each finished run's summary, once committed, is in it.
rule results_report:
    input:
        sorted(Path().glob("results/metrics/*/seed*.json")),
        params=PARAMS_FILE,
    output:
        "docs/results.md",
    log:
        "logs/report/results.log",
    threads: 1
    shell:
        "python -m spd report --params {input.params} --out {output} > {log} 2>&1"
