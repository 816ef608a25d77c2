#!/usr/bin/env bash
# Decompose a list of runs on one machine, N at a time, until a deadline: how the session-8 runs
# on a borrowed GPU were made (README, "Results"). Runs that cannot finish in time are killed and
# reported; finished ones are ordinary run folders for `spd evaluate`.
#
#   benchmarks/gpu_batch.sh JOBS OUT PARALLEL SECONDS [decompose options, e.g. --device cuda]
#
# JOBS: one run per line, "experiment seed target.pt" (blank and '#' lines are skipped), most
# important first; $PYTHON (default python) runs them. A run is not started with less than
# $MIN_SECONDS (default 60) left. OUT gets runs/<experiment>/seed<seed>/,
# logs/<experiment>.seed<seed>.log and jobs.log (each run's exit status and wall time).
# Ctrl-C stops every run.
set -euo pipefail
jobs=$1 out=$2 parallel=$3 seconds=$4
shift 4
export PYTHON=${PYTHON:-python} MIN_SECONDS=${MIN_SECONDS:-60} out
export deadline=$(( $(date +%s) + seconds )) decompose_options="$*"
mkdir -p "$out/runs" "$out/logs"

run_one() {
    if (( $# != 3 )); then
        echo "bad job line (want: experiment seed target.pt): $*"
        return 0
    fi
    local experiment=$1 seed=$2 target=$3 start left status=0
    start=$(date +%s)
    left=$(( deadline - start ))
    if (( left < MIN_SECONDS )); then
        echo "$experiment seed$seed not started ($left s left)"
        return 0
    fi
    # --foreground keeps the run in this process group, so that Ctrl-C reaches it
    # shellcheck disable=SC2086  # the options are split on purpose
    timeout --foreground -k 30 "$left" "$PYTHON" -m spd decompose --experiment "$experiment" \
        --seed "$seed" --target "$target" --out "$out/runs/$experiment/seed$seed" $decompose_options \
        > "$out/logs/$experiment.seed$seed.log" 2>&1 || status=$?
    echo "$experiment seed$seed exit $status after $(( $(date +%s) - start )) s"
}
export -f run_one

grep -Ev '^[[:space:]]*(#|$)' "$jobs" | sed 's/[[:space:]]*$//' \
    | xargs -P "$parallel" -L 1 bash -c 'run_one "$@"' _ | tee "$out/jobs.log"
