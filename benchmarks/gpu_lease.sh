#!/usr/bin/env bash
# One borrowed-GPU lease (README, "Results"): check that `--cuda-graph` matches eager steps on the
# residual MLPs, then decompose the runs of JOBS with gpu_batch.sh (with the graph if the check
# passed) until SECONDS after the start (runs then get 30 s to stop, and the last packing follows:
# give the device call that margin). Every 30 s and at the end, it packs into $OUT what must come
# back: one archive per residual-MLP run (their saved states are large) and one for everything else
# (TMS runs, logs, the check, GPU use), since a lease returns at most 8 files. A run cut off by the
# deadline leaves its last saved state (every 1000 steps) in its folder; a later lease resumes it
# from results/runs/<experiment>/seed<seed>/decomposition.state.pt when the call carries that folder.
# /tmp/lease is kept on purpose: a second call on a still-warm machine resumes from the states there
# (a carried state never replaces one already there, which is at least as far on).
#
#   benchmarks/gpu_lease.sh JOBS PARALLEL SECONDS
#
# Graph runs keep the GPU busy alone, so runs at once share it and buy no throughput: in session 10,
# tms_40-10 made 123 steps/s beside three other runs against about 500 alone (README, "Results").
# With PARALLEL 1 the first runs of JOBS finish before the deadline rather than all being cut off.
set -uo pipefail
jobs=$1 parallel=$2 seconds=$3
end=$(( $(date +%s) + seconds ))
work=/tmp/lease
mkdir -p "$work/runs"
for state in results/runs/*/seed*/decomposition.state.pt; do
    [[ -f $state ]] || continue
    run=${state#results/runs/}
    [[ -e $work/runs/$run ]] && continue
    mkdir -p "$work/runs/${run%/*}" && cp "$state" "$work/runs/$run" && echo "resumable: $run"
done

pack() {
    local run name
    for run in "$work"/runs/resid_mlp*/seed*; do
        [[ -d $run ]] || continue
        name=$(basename "$(dirname "$run")").$(basename "$run")
        name=${name//[^A-Za-z0-9._-]/_}  # a lease returns only plain names (no '@', '=')
        archive "$OUT/$name.tgz" "runs/${run#"$work"/runs/}"
    done
    archive "$OUT/rest.tgz" --exclude='runs/resid_mlp*' .
}

archive() {  # archive DESTINATION TAR-ARGS...: written aside, then renamed; growing logs are fine
    local destination=$1 status=0
    shift
    tar czf "$destination.part" --warning=no-file-changed -C "$work" "$@" || status=$?
    if (( status <= 1 )); then mv "$destination.part" "$destination"; else rm -f "$destination.part"; fi
}

nvidia-smi dmon -s u -d 10 > "$work/dmon.txt" 2>&1 &
dmon=$!
timeout 150 "${PYTHON:-python}" benchmarks/cuda_graph_check.py resid_mlp1 resid_mlp2 --steps 300 \
    > "$work/graph_check.jsonl" 2> "$work/graph_check.err"
cat "$work/graph_check.jsonl"
graph=$("${PYTHON:-python}" - "$work/graph_check.jsonl" <<'PY'
import json, sys
lines = [json.loads(line) for line in open(sys.argv[1])]
drifts = [line["max_rel_drift"] for line in lines if "max_rel_drift" in line]
resumed = [line["max_param_difference"] for line in lines if "max_param_difference" in line]
print("--cuda-graph" if len(drifts) == 2 and max(drifts) < 1e-3 and resumed == [0.0] else "")
PY
)
echo "decompose options: --device cuda $graph"
# the packer: a TERM ends its wait for the next round at once, but lets a pack under way finish
(trap 'exit 0' TERM; while true; do sleep 30 & wait $!; pack; done) &
packer=$!
benchmarks/gpu_batch.sh "$jobs" "$work" "$parallel" $(( end - $(date +%s) )) --device cuda $graph --threads 1
kill "$packer" "$dmon" 2> /dev/null
wait "$packer"
pack
ls -la "$OUT"
