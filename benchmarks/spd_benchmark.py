"""SPD on any experiment of params.yaml: median step time (wall and CPU), peak memory, and wall
time to quality.

    python benchmarks/spd_benchmark.py step-time                       # every SPD experiment
    python benchmarks/spd_benchmark.py step-time resid_mlp1 --threads 2
    python benchmarks/spd_benchmark.py time-to-quality tms_5-2 --steps 20000 40000
    python benchmarks/spd_benchmark.py time-to-quality resid_mlp1 --steps 30000 --eval-every 2500
    python benchmarks/spd_benchmark.py state-quality resid_mlp2 --target T.pt --states S1.pt S2.pt

step-time times paper-mode steps on an untrained target of the right shape, each experiment in its
own process so that peak RSS is per experiment. time-to-quality trains the target, then runs full
decompositions of the given lengths and prints each one's wall time, key metrics and recovery
verdict. With `--eval-every N` (constant learning rate only, where the first N steps of a long run
are exactly a run of N steps) one run is evaluated every N steps instead. state-quality scores
copies of a pipeline run's saved training state (`decomposition.state.pt`, rewritten every 1000
steps; copy it while the run goes on, e.g. `while sleep 600; do cp STATE states/$(date +%s).pt;
done`): with a constant learning rate, the state after N steps is a run of N steps, and each
state says its step.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from spd.allocator import retain_freed_memory
from spd.checkpointing import checkpointing_for, load_state
from spd.config import (
    APDConfig,
    ConfigError,
    ExperimentConfig,
    Params,
    SPDConfig,
    load_params,
)
from spd.decomp.component_model import ComponentModel
from spd.decomp.storage import untrained_decomposition
from spd.decomp.train import decompose, make_optimizer, spd_losses
from spd.evaluate.causal_importance_metrics import evaluation_ci
from spd.evaluate.recovery import recovery_failures
from spd.evaluate.report import metric_rows
from spd.families.registry import family
from spd.pipeline.layout import DECOMPOSITION_STATE_FILE, TARGET_FILE
from spd.provenance import code_version, machine
from spd.targets.base import Target
from spd.targets.registry import build_target, load_target, train_target

PARAMS = Path(__file__).parents[1] / "params.yaml"


def emit(line: dict[str, object], device: str, source_dir: Path | None = None) -> None:
    """One JSONL result line, naming the machine (CPU or GPU model, the CPU's vector instruction
    set), how busy it was (1-minute load average, where the OS has one), torch version and
    commit (of the checkout at `source_dir`, default the package's)."""
    where = {
        "machine": machine(device),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "load_avg_1min": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
        "torch": str(torch.__version__),
        "commit": code_version(source_dir),
    }
    print(json.dumps(line | where), flush=True)


def spd_experiments(params: Params) -> list[str]:
    experiments = params.experiments
    return [name for name, e in experiments.items() if not isinstance(e.decomposition, APDConfig)]


def untrained_target(config: ExperimentConfig, device: str) -> Target:
    """A frozen target of the experiment's shape, untrained (seed 0): enough to time SPD steps."""
    torch.manual_seed(0)
    model = family(config.target).build_model(config.target).to(device)
    for param in model.parameters():
        param.requires_grad_(False)
    return build_target(model, config.target)


def time_steps(config: ExperimentConfig, steps: int, warmup: int, device: str) -> dict[str, object]:
    spd = config.decomposition
    assert isinstance(spd, SPDConfig), "step-time measures SPD"
    target = untrained_target(config, device)
    generator = torch.Generator(device=device).manual_seed(0)
    components = ComponentModel.from_config(target, spd, generator)
    optimizer = make_optimizer(components, spd)
    times, cpu_times = [], []
    for i in range(warmup + steps):
        start, cpu_start = time.perf_counter(), time.process_time()
        losses = spd_losses(
            components, target.sample_batch(spd.batch_size, generator), spd, generator
        )
        optimizer.zero_grad(set_to_none=True)
        losses["total"].backward()
        optimizer.step()
        if device == "cuda":
            torch.cuda.synchronize()
        if i >= warmup:
            times.append(time.perf_counter() - start)
            cpu_times.append(time.process_time() - cpu_start)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if device == "cuda":
        peak_mb = torch.cuda.max_memory_allocated() / 2**20
    return {
        "config": config.name,
        "C": spd.C,
        "batch": spd.batch_size,
        "median_step_ms": round(1e3 * statistics.median(times), 2),
        # the process's CPU time (all threads): less sensitive than wall time to other processes
        "median_step_cpu_ms": round(1e3 * statistics.median(cpu_times), 2),
        "peak_mem_mb": round(peak_mb, 1),
        "threads": torch.get_num_threads(),
    }


def step_time_all(args: argparse.Namespace) -> None:
    params = load_params(args.params)
    for experiment in args.experiments:
        params.experiment(experiment)  # an unknown name is an error before any timing
    for experiment in args.experiments or spd_experiments(params):
        command = [
            sys.executable,
            __file__,
            "_one-step-time",
            experiment,
            "--steps",
            str(args.steps),
            "--device",
            args.device,
            "--params",
            str(args.params),
            "--threads",
            str(args.threads),
        ]
        result = subprocess.run(command, check=False, capture_output=True, text=True)
        if result.returncode != 0:
            last = (result.stderr.strip().splitlines() or ["no output"])[-1]
            sys.exit(f"spd_benchmark: {experiment}: {last}")
        print(result.stdout.strip(), flush=True)


def verdict(model: ComponentModel, config: ExperimentConfig, spd: SPDConfig) -> dict[str, object]:
    """Key metrics and the recovery verdict (docs/method.md) of a decomposition as it stands."""
    ci = evaluation_ci(model, config.target.n_features, spd, config.evaluation)
    rows = metric_rows(model, ci, config.target, config.evaluation)
    failures = recovery_failures(rows, config.target)
    keep = (
        "mmcs",
        "ml2r",
        "alive_subcomponents",
        "ci_pattern_errors",
        "neuron_contribution_corr",
        "active_on_every_probe",
        "dense_pattern_errors",
    )
    metrics = {
        f"{r['layer']}/{r['metric']}": round(float(r["value"]), 4)
        for r in rows
        if r["metric"] in keep
    }
    return {"recovered": not failures, **metrics, "failures": failures}


def spd_config(
    args: argparse.Namespace, prefixes_are_runs: bool
) -> tuple[ExperimentConfig, SPDConfig]:
    """The experiment and its SPD settings; with `prefixes_are_runs`, checked to have a constant
    learning rate (a cosine run's first N steps are not a run of N steps)."""
    config = load_params(args.params).experiment(args.experiment)
    spd = config.decomposition
    if not isinstance(spd, SPDConfig):
        sys.exit(f"{args.experiment} is not an SPD experiment")
    if prefixes_are_runs and spd.lr_schedule != "constant":
        sys.exit(
            f"{args.experiment}: scoring part of a run needs a constant learning rate, not {spd.lr_schedule}"
        )
    return config, spd


def state_quality(args: argparse.Namespace) -> None:
    config, spd = spd_config(args, prefixes_are_runs=True)
    spd = spd.model_copy(update={"seed": args.seed})
    target, _, _ = load_target(args.target, args.device)
    target = target.restricted_to(spd.modules)
    model = untrained_decomposition(target, spd)
    for path in args.states:
        # the run's own identity check (config hash, target fingerprint): a state of another
        # seed, setting or target is refused rather than scored
        state = load_state(
            checkpointing_for("decomposition", spd, path, every=1, of_target=target),
            log=lambda _: None,
        )
        if state is None:
            sys.exit(
                f"{path}: not a readable training state of {config.name} seed {spd.seed} on {args.target}"
            )
        model.load_state_dict(state.model)
        line = {"config": config.name, "steps": state.next_step, "state": str(path)}
        emit(line | verdict(model, config, spd), args.device)


def time_to_quality(args: argparse.Namespace) -> None:
    config, base = spd_config(args, prefixes_are_runs=bool(args.eval_every))
    target_model, _ = train_target(config.target, args.device, lambda _: None)
    target = build_target(target_model, config.target)
    if args.eval_every:
        spd = base.model_copy(update={"steps": max(args.steps)})
        start = time.perf_counter()

        def report(step: int, model: ComponentModel) -> None:
            if (step + 1) % args.eval_every == 0 or step + 1 == spd.steps:
                wall = time.perf_counter() - start
                line = {"config": config.name, "steps": step + 1, "wall_s": round(wall, 1)}
                emit(line | verdict(model, config, spd), args.device)

        decompose(target, spd, log=lambda _: None, after_step=report)
        return
    for steps in args.steps:
        spd = base.model_copy(update={"steps": steps, "log_every": steps})
        result = decompose(target, spd, log=lambda _: None)
        line = {"config": config.name, "steps": steps, "wall_s": round(result.seconds, 1)}
        emit(line | verdict(result.model, config, spd), args.device)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(
        dest="command", required=True, metavar="{step-time,time-to-quality,state-quality}"
    )
    step = commands.add_parser("step-time")
    step.add_argument("experiments", nargs="*")
    step.add_argument("--steps", type=int, default=60)
    one = commands.add_parser("_one-step-time")
    one.add_argument("experiment")
    one.add_argument("--steps", type=int, default=30)
    quality = commands.add_parser("time-to-quality")
    quality.add_argument("experiment")
    quality.add_argument("--steps", type=int, nargs="+", required=True)
    quality.add_argument(
        "--eval-every", type=int, help="evaluate one run every N steps (constant lr)"
    )
    states = commands.add_parser("state-quality")
    states.add_argument("experiment")
    states.add_argument("--target", type=Path, required=True, help=f"the run's {TARGET_FILE}")
    states.add_argument(
        "--states",
        type=Path,
        nargs="+",
        required=True,
        help=f"copies of its {DECOMPOSITION_STATE_FILE}",
    )
    states.add_argument(
        "--seed", type=int, default=0, help="the run's decomposition seed (default 0)"
    )
    for sub in (step, one, quality, states):
        sub.add_argument("--device", default="cpu")
        sub.add_argument("--params", type=Path, default=PARAMS)
        sub.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    retain_freed_memory()  # as `spd` runs
    try:
        run(args)
    except ConfigError as error:
        sys.exit(f"spd_benchmark: error: {error}")


def run(args: argparse.Namespace) -> None:
    if args.command == "step-time":
        step_time_all(args)
    elif args.command == "_one-step-time":
        config = load_params(args.params).experiment(args.experiment)
        emit(time_steps(config, args.steps, warmup=5, device=args.device), args.device)
    elif args.command == "state-quality":
        state_quality(args)
    else:
        time_to_quality(args)


if __name__ == "__main__":
    main()
