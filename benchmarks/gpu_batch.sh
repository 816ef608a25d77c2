#!/usr/bin/env bash
# Decompose a list of runs on one machine, N at a time, until a deadline: how the session-8 runs
# on a borrowed GPU were made (README, "Results"). Runs that cannot finish in time are killed and
# reported; finished ones are ordinary run folders for `spd evaluate`.
#
#   benchmarks/gpu_batch.sh JOBS OUT PARALLEL SECONDS [decompose options, e.g. --device cuda]
#
# JOBS: one run per line, "experiment seed target.pt" ('#' lines are skipped), most important
# first; $PYTHON (default python) runs them. OUT gets runs/<experiment>/seed<seed>/,
# logs/<experiment>.seed<seed>.log and jobs.log (each run's exit status and wall time).
set -euo pipefail
jobs=$1 out=$2 parallel=$3 seconds=$4
shift 4
export PYTHON=${PYTHON:-python} out deadline=$(( $(date +%s) + seconds )) decompose_options="$*"
mkdir -p "$out/runs" "$out/logs"

run_one() {
    local experiment=$1 seed=$2 target=$3 start left status=0
    start=$(date +%s)
    left=$(( deadline - start ))
    if (( left <= 0 )); then
        echo "$experiment seed$seed not started (deadline)"
        return 0
    fi
    # shellcheck disable=SC2086  # the options are split on purpose
    timeout "$left" "$PYTHON" -m spd decompose --experiment "$experiment" --seed "$seed" \
        --target "$target" --out "$out/runs/$experiment/seed$seed" $decompose_options \
        > "$out/logs/$experiment.seed$seed.log" 2>&1 || status=$?
    echo "$experiment seed$seed exit $status after $(( $(date +%s) - start )) s"
}
export -f run_one

grep -v '^#' "$jobs" | xargs -P "$parallel" -L 1 bash -c 'run_one "$@"' _ | tee "$out/jobs.log"
