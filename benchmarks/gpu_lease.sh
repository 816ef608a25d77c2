#!/usr/bin/env bash
# One borrowed-GPU lease (README, "Results"): check that `--cuda-graph` matches eager steps on the
# residual MLPs, then decompose the runs of JOBS with gpu_batch.sh (with the graph if the check
# passed) until SECONDS after the start. Every 30 s and at the end, it packs into $OUT what must come
# back: one archive per residual-MLP run (their saved states are large) and one for everything else
# (TMS runs, logs, the check, GPU use), since a lease returns at most 8 files. A run cut off by the
# deadline leaves its last saved state (every 1000 steps) in its folder; a later lease resumes it
# from results/runs/<experiment>/seed<seed>/decomposition.state.pt when the call carries that folder.
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
    mkdir -p "$work/runs/${run%/*}" && cp "$state" "$work/runs/$run" && echo "resumable: $run"
done

pack() {
    local run name
    for run in "$work"/runs/resid_mlp*/seed*; do
        [[ -d $run ]] || continue
        name=$(basename "$(dirname "$run")").$(basename "$run")
        tar czf "$OUT/.$name.tgz" -C "$work" "runs/${run#"$work"/runs/}" && mv "$OUT/.$name.tgz" "$OUT/$name.tgz"
    done
    tar czf "$OUT/.rest.tgz" -C "$work" --exclude='runs/resid_mlp*' . && mv "$OUT/.rest.tgz" "$OUT/rest.tgz"
}

nvidia-smi dmon -s u -d 10 > "$work/dmon.txt" 2>&1 &
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
while sleep 30; do pack; done &
packer=$!
benchmarks/gpu_batch.sh "$jobs" "$work" "$parallel" $(( end - $(date +%s) )) --device cuda $graph --threads 1
kill "$packer"
pack
ls -la "$OUT"
