"""Command line: `spd train-target | decompose | evaluate | run`, each for one experiment of
params.yaml (`--experiment NAME`) or of a single-experiment YAML file (`--config FILE`);
`spd figures | table1 | summary` over evaluated run folders; `spd sweep-figures | robustness |
compare` over the runs params.yaml names (sweeps, seeds, SPD vs APD).

This module only reads arguments and turns them into the typed arguments of the stages in
`spd.pipeline`. Every input is validated before any compute starts; errors are one line on
stderr, exit code 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import torch

from spd.allocator import retain_freed_memory
from spd.checks import check_fits_in_memory, check_output_file, check_output_folder
from spd.config import (
    APDConfig,
    ConfigError,
    ExperimentConfig,
    config_hash,
    load_experiment_config,
    load_params,
    parse_experiment_config,
)
from spd.io import CheckpointError
from spd.optim.loop import DivergenceError
from spd.pipeline import layout
from spd.pipeline.layout import DECOMPOSITION_FILE, TARGET_FILE, RunFolder
from spd.pipeline.run_config import run_config

MAX_THREADS = 1024  # torch takes 32-bit counts, and every thread is started
# Figures made of the runs params.yaml names, by command.
OVER_PARAMS = {
    "sweep-figures": "A sweep's CI heatmaps (paper figure 8 style), one column per value.",
    "robustness": "robustness.pdf: SPD's recovery on TMS across seeds and across every sweep.",
    "compare": "method_comparison.pdf: SPD vs APD cost, MMCS and ML2R per seed.",
}


def _device(name: str) -> str:
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda: no CUDA device is available")
    return name


def _with_overrides(
    config: ExperimentConfig, section: str, updates: dict[str, object]
) -> ExperimentConfig:
    """Apply command-line overrides to one section and validate the result like a config file."""
    updates = {key: value for key, value in updates.items() if value is not None}
    if not updates:
        return config
    raw = config.model_dump(mode="json")
    raw[section] = raw[section] | updates
    return parse_experiment_config(raw, source="command line")


def _experiment(args: argparse.Namespace) -> ExperimentConfig | None:
    """The experiment --config or --params/--experiment names; None where neither is given."""
    if args.config is not None:
        return load_experiment_config(args.config)
    if args.experiment is not None:
        return load_params(args.params).experiment(args.experiment)
    return None


def _selected_runs(listed: list[Path], params_path: Path | None, root: Path) -> list[Path]:
    if (params_path is None) == (not listed):
        raise ConfigError("give either run folders or --all-runs PARAMS, not both or neither")
    if params_path is None:
        return listed
    from spd.runsets import main_experiments, run_folder

    params = load_params(params_path)
    return [
        run_folder(params, name, seed, root)
        for name in main_experiments(params)
        for seed in params.seeds
    ]


def _figures_over_params(args: argparse.Namespace) -> None:
    """The figures made of runs that params.yaml names: a sweep, robustness, SPD vs APD."""
    from spd.pipeline import figures

    params = load_params(args.params)
    if args.command == "sweep-figures":
        figures.sweep_figures(params, args.sweep, args.experiment, args.runs_root, args.out)
    elif args.command == "robustness":
        figures.robustness(params, args.runs_root, args.out, args.partial)
    else:
        figures.compare(params, args.runs_root, args.benchmarks_root, args.out, args.partial)


def _require_file(path: Path, flag: str) -> Path:
    if not path.is_file():
        raise ConfigError(f"{flag} {path}: file not found")
    return path


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="spd", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    def add(name: str, help_text: str, source_help: str = "") -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        source = sub.add_mutually_exclusive_group(required=not source_help)
        source.add_argument(
            "--experiment", help=f"experiment name in --params (e.g. tms_5-2){source_help}"
        )
        source.add_argument("--config", type=Path, help="a single-experiment YAML file instead")
        sub.add_argument(
            "--params", type=Path, default=Path("params.yaml"), help="default: params.yaml"
        )
        sub.add_argument("--out", type=Path, required=True, help="output folder")
        sub.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
        sub.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's)")
        return sub

    train = add("train-target", f"Train the experiment's target model; writes {TARGET_FILE}.")
    train.add_argument("--seed", type=int, help="override target.seed (first seed tried)")
    decompose = add(
        "decompose",
        f"Decompose a trained target; writes {', '.join(layout.DECOMPOSE_OUTPUTS)} (the run's "
        "config, overrides applied).",
    )
    decompose.add_argument("--target", type=Path, required=True, help=f"{TARGET_FILE} to decompose")
    run = add("run", "Train the target, decompose it and evaluate it, all into --out.")
    for sub in (decompose, run):
        sub.add_argument("--seed", type=int, help="override decomposition.seed")
        sub.add_argument("--steps", type=int, help="override decomposition.steps")
        sub.add_argument(
            "--cuda-graph",
            action="store_true",
            help="with --device cuda: record one SPD step as a CUDA graph and replay it (faster; "
            "equal to an eager run up to float rounding)",
        )
    for sub in (train, decompose, run):
        sub.add_argument(
            "--checkpoint-every",
            type=int,
            default=1000,
            help=f"steps between saves of the training state ({layout.TARGET_STATE_FILE}, "
            f"{layout.DECOMPOSITION_STATE_FILE}), from which a rerun resumes (default 1000)",
        )
    evaluate = add(
        "evaluate",
        "Score a decomposition against the ground truth, by the run's config stored beside it; "
        f"writes {', '.join(layout.EVALUATE_OUTPUTS)} and the family's tables.",
        source_help="; optional: the run's experiment, checked against the run's config, "
        "whose evaluation settings then apply",
    )
    evaluate.add_argument("--target", type=Path, required=True, help=TARGET_FILE)
    evaluate.add_argument(
        "--decomposition",
        type=Path,
        required=True,
        help=f"{DECOMPOSITION_FILE}, beside its run's {layout.RUN_CONFIG_FILE}",
    )

    def add_over_runs(name: str, help_text: str, out_help: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("runs", type=Path, nargs="*", help="evaluated run folders")
        sub.add_argument(
            "--all-runs",
            type=Path,
            metavar="PARAMS",
            help="instead of listing folders: the main job's runs, main_experiments x seeds of "
            "PARAMS, as RUNS_ROOT/<experiment>/seed<seed>",
        )
        sub.add_argument(
            "--runs-root", type=Path, default=Path("results/runs"), help="default: results/runs"
        )
        sub.add_argument("--out", type=Path, required=True, help=out_help)
        return sub

    figures = add_over_runs(
        "figures", "Figures PDF (TMS or residual MLP) from evaluated run folders.", "PDF to write"
    )
    figures.add_argument("--table1", type=Path, help="tms_table1.parquet to show on the first page")
    add_over_runs(
        "table1",
        "Table 1 (MMCS, ML2R over seeds) from run folders.",
        "path stem: writes STEM.md, STEM.parquet",
    )
    for name, help_text in OVER_PARAMS.items():
        sub = commands.add_parser(
            name, help=help_text, description=help_text + " Reads the runs PARAMS names."
        )
        sub.add_argument(
            "--params", type=Path, default=Path("params.yaml"), help="default: params.yaml"
        )
        sub.add_argument(
            "--runs-root", type=Path, default=Path("results/runs"), help="default: results/runs"
        )
        sub.add_argument("--out", type=Path, required=True, help="PDF to write")
        if name == "sweep-figures":
            sub.add_argument("--sweep", required=True, help="a sweep of PARAMS, e.g. beta3")
            sub.add_argument("--experiment", required=True, help="an experiment the sweep covers")
        if name in ("robustness", "compare"):
            sub.add_argument(
                "--partial",
                action="store_true",
                help="draw the runs evaluated so far and name the others on the pages "
                "(default: every run must be there)",
            )
        if name == "compare":
            sub.add_argument(
                "--benchmarks-root",
                type=Path,
                default=Path("benchmarks/runs/decompose"),
                help="Snakemake benchmark files of the decompose jobs (default: benchmarks/runs/decompose)",
            )
    report = commands.add_parser(
        "report",
        help="docs/results.md: every result the record holds, from the committed summaries alone.",
        description="docs/results.md: every result the record holds, from the committed summaries alone.",
    )
    report.add_argument(
        "--params", type=Path, default=Path("params.yaml"), help="default: params.yaml"
    )
    report.add_argument(
        "--metrics-root",
        type=Path,
        default=Path("results/metrics"),
        help="default: results/metrics",
    )
    report.add_argument(
        "--out", type=Path, default=Path("docs/results.md"), help="default: docs/results.md"
    )
    summary = commands.add_parser(
        "summary",
        help="Small metric JSON and loss CSV of one run, for `dvc metrics` / `dvc plots`.",
    )
    summary.add_argument("run", type=Path, help="an evaluated run folder")
    summary.add_argument("--metrics", type=Path, required=True, help="JSON to write")
    summary.add_argument("--losses", type=Path, required=True, help="CSV to write")

    return parser


def _output_files(args: argparse.Namespace) -> list[tuple[str, Path]]:
    """The files (not folders) a command writes, by the option naming each; a Table 1 stem by
    its Markdown file."""
    if args.command == "summary":
        return [("--metrics", args.metrics), ("--losses", args.losses)]
    if args.command == "report":
        return [("--out", args.out)]
    if args.command == "table1":
        return [("--out", args.out.with_suffix(".md"))]
    if args.command == "figures" or args.command in OVER_PARAMS:
        return [("--out", args.out)]
    return []


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    for name, value in vars(args).items():
        # Python 3.11's argparse reads `--steps=--` as an empty list instead of refusing it.
        if value == [] and name != "runs":
            parser.error(f"argument --{name.replace('_', '-')}: expected one argument")
    try:
        for option, path in _output_files(args):
            check_output_file(path, option)
        if args.command == "summary":
            from spd.pipeline.summary import summary

            summary(args.run, args.metrics, args.losses)
            return 0
        if args.command == "report":
            from spd.pipeline.report import report

            report(args.params, args.metrics_root, args.out)
            return 0
        if args.command in OVER_PARAMS:
            _figures_over_params(args)
            return 0
        if args.command in ("figures", "table1"):
            runs = _selected_runs(args.runs, args.all_runs, args.runs_root)
            if args.command == "figures":
                from spd.pipeline.figures import figures

                figures(runs, args.out, args.table1)
            else:
                from spd.pipeline.table1 import table1

                table1(runs, args.out)
            return 0
        experiment = _experiment(args)
        if args.command == "evaluate":
            decomposition_path = _require_file(args.decomposition, "--decomposition")
            config = run_config(RunFolder(decomposition_path.parent), experiment)
        else:
            assert experiment is not None  # argparse requires --experiment or --config
            config = experiment
        if args.command == "train-target":
            config = _with_overrides(config, "target", {"seed": args.seed})
        elif args.command in ("decompose", "run"):
            config = _with_overrides(
                config, "decomposition", {"seed": args.seed, "steps": args.steps}
            )
        device = _device(args.device)
        if getattr(args, "cuda_graph", False):
            if device != "cuda":
                raise ConfigError("--cuda-graph: needs --device cuda")
            if isinstance(config.decomposition, APDConfig):
                raise ConfigError(
                    "--cuda-graph: APD runs eagerly (only SPD steps are recorded as graphs)"
                )
        if getattr(args, "checkpoint_every", 1) < 1:
            raise ConfigError(f"--checkpoint-every {args.checkpoint_every}: must be at least 1")
        if args.threads is not None:
            if not 1 <= args.threads <= MAX_THREADS:
                raise ConfigError(f"--threads {args.threads}: must be between 1 and {MAX_THREADS}")
            torch.set_num_threads(args.threads)
        check_output_folder(args.out)
        check_fits_in_memory(config, device, args.command)
        retain_freed_memory()
        if args.command == "train-target":
            from spd.pipeline.train_target import train_target

            train_target(config, args.out, device, args.checkpoint_every)
        elif args.command == "decompose":
            from spd.pipeline.decompose import decompose

            target_path = _require_file(args.target, "--target")
            decompose(config, target_path, args.out, device, args.checkpoint_every, args.cuda_graph)
        elif args.command == "evaluate":
            from spd.pipeline.evaluate import evaluate

            target_path = _require_file(args.target, "--target")
            evaluate(config, target_path, decomposition_path, args.out, device)
        else:
            from spd.pipeline.decompose import decompose
            from spd.pipeline.evaluate import evaluate
            from spd.pipeline.train_target import train_target

            target_path = train_target(config, args.out, device, args.checkpoint_every)
            decomposition_path = decompose(
                config, target_path, args.out, device, args.checkpoint_every, args.cuda_graph
            )
            evaluate(
                run_config(RunFolder(args.out), None),
                target_path,
                decomposition_path,
                args.out,
                device,
            )
    except (ConfigError, CheckpointError) as error:
        _print_error(str(error))
        return 2
    except DivergenceError as error:
        _print_error(f"[{config.name}, config {config_hash(config)}] {error}")
        return 3
    return 0


def _print_error(message: str) -> None:
    """`spd: error: message` on one line of stderr: characters that would break or hide the line
    (a user's name may hold any) are written as escapes."""
    shown = "".join(c if c.isprintable() else repr(c)[1:-1] for c in message)
    print(f"spd: error: {shown}", file=sys.stderr)
