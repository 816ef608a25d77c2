"""SPD on the TMS targets: median step time and peak memory, and wall time to quality.

    python benchmarks/tms_spd.py step-time                      # every experiment of params.yaml
    python benchmarks/tms_spd.py time-to-quality tms_5-2 --steps 20000 40000

step-time times paper-mode steps (batch 4096) on an untrained target of the right shape, each
config in its own process so that peak RSS is per config. time-to-quality trains the target, then
runs full decompositions of the given lengths and reports the wall time and the section 7 verdict.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from spd.config import load_params
from spd.decomp.component_model import ComponentModel
from spd.decomp.train import decompose, make_optimizer, training_step
from spd.evaluate.causal_importance_metrics import evaluation_ci
from spd.evaluate.recovery import tms_recovery_failures
from spd.evaluate.report import metric_rows
from spd.targets import tms
from spd.targets.registry import train_target

PARAMS = Path(__file__).parents[1] / "params.yaml"


def time_steps(experiment: str, steps: int, warmup: int, device: str) -> dict[str, object]:
    config = load_params(PARAMS).experiment(experiment)
    torch.manual_seed(0)
    model = tms.build_model(config.target).to(device)
    model.tie_weights()
    target = tms.as_target(model, config.target)
    spd = config.decomposition
    generator = torch.Generator(device=device).manual_seed(0)
    components = ComponentModel(target, spd.C, spd.d_gate, spd.fused_gates, generator)
    optimizer = make_optimizer(components, spd)
    times = []
    for i in range(warmup + steps):
        start = time.perf_counter()
        training_step(components, optimizer, spd, i, generator)
        if device == "cuda":
            torch.cuda.synchronize()
        if i >= warmup:
            times.append(time.perf_counter() - start)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if device == "cuda":
        peak_mb = torch.cuda.max_memory_allocated() / 2**20
    return {
        "config": config.name,
        "C": spd.C,
        "batch": spd.batch_size,
        "median_step_ms": round(1e3 * statistics.median(times), 2),
        "peak_mem_mb": round(peak_mb, 1),
        "threads": torch.get_num_threads(),
    }


def step_time_all(args: argparse.Namespace) -> None:
    for experiment in args.experiments or list(load_params(PARAMS).experiments):
        result = subprocess.run(
            [sys.executable, __file__, "_one-step-time", experiment, "--steps", str(args.steps),
             "--device", args.device],
            check=True, capture_output=True, text=True,
        )
        print(result.stdout.strip(), flush=True)


def time_to_quality(args: argparse.Namespace) -> None:
    config = load_params(PARAMS).experiment(args.experiment)

    target_model, _ = train_target(config.target, args.device, lambda _: None)
    target = tms.as_target(target_model, config.target)
    for steps in args.steps:
        spd = config.decomposition.model_copy(update={"steps": steps, "log_every": steps})
        result = decompose(target, spd, log=lambda _: None)
        ci = evaluation_ci(result.model, config.target.n_features, spd, config.evaluation)
        rows = metric_rows(result.model, ci, config.target, config.evaluation)
        failures = tms_recovery_failures(rows, config.target)
        summary = {(r["layer"], r["metric"]): r["value"] for r in rows}
        print(json.dumps({
            "config": config.name, "steps": steps, "wall_s": round(result.seconds, 1),
            "mmcs": round(summary[("linear1", "mmcs")], 5), "ml2r": round(summary[("linear1", "ml2r")], 4),
            "recovered": not failures, "failures": failures,
        }), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    step = commands.add_parser("step-time")
    step.add_argument("experiments", nargs="*")
    step.add_argument("--steps", type=int, default=60)
    step.add_argument("--device", default="cpu")
    one = commands.add_parser("_one-step-time")
    one.add_argument("experiment")
    one.add_argument("--steps", type=int, default=30)
    one.add_argument("--device", default="cpu")
    quality = commands.add_parser("time-to-quality")
    quality.add_argument("experiment")
    quality.add_argument("--steps", type=int, nargs="+", required=True)
    quality.add_argument("--device", default="cpu")
    args = parser.parse_args()
    if args.command == "step-time":
        step_time_all(args)
    elif args.command == "_one-step-time":
        print(json.dumps(time_steps(args.experiment, args.steps, warmup=5, device=args.device)))
    else:
        time_to_quality(args)


if __name__ == "__main__":
    main()
