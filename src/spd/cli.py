"""Command line: `spd train-target | decompose | evaluate | run`, each for one experiment of
params.yaml (`--experiment NAME`) or of a single-experiment YAML file (`--config FILE`);
`spd figures | table1 | summary` over evaluated run folders; `spd sweep-figures | robustness |
compare` over the runs params.yaml names (sweeps, seeds, SPD vs APD).

Every input is validated before any compute starts; errors are one line on stderr, exit code 2.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, cast

import pandas as pd
import torch
import yaml

from spd.checks import check_fits_in_memory, check_output_folder
from spd.config import (
    APDConfig,
    ConfigError,
    ExperimentConfig,
    SPDConfig,
    config_hash,
    load_experiment_config,
    load_params,
    parse_experiment_config,
    settings_hash,
)
from spd.io import CheckpointError, read_parquet, write_parquet
from spd.optim.loop import DivergenceError

if TYPE_CHECKING:
    from spd.decomp.apd import APDModel
    from spd.decomp.component_model import ComponentModel

TARGET_FILE = "target.pt"
DECOMPOSITION_FILE = "decomposition.pt"
LOSSES_FILE = "losses.parquet"
METRICS_FILE = "metrics.parquet"
CI_PROBES_FILE = "ci_probes.parquet"
CI_HISTOGRAM_FILE = "ci_histogram.parquet"
RUN_RECORD_FILE = "run.json"  # the run's settings, provenance and verdict, written by evaluate
TRAINING_STATE_FILE = "decomposition.state.pt"  # in-progress state; removed when the run ends
TARGET_STATE_FILE = "target.state.pt"  # likewise for target training
MAX_THREADS = 1024  # torch takes 32-bit counts, and every thread is started


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


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


def _train_target(config: ExperimentConfig, out: Path, device: str, checkpoint_every: int) -> Path:
    from spd.targets.registry import save_target, train_target

    _log(f"[{config.name}] training target")
    state_path = out / TARGET_STATE_FILE
    model, info = train_target(config.target, device, _log, state_path, checkpoint_every)
    path = out / TARGET_FILE
    save_target(model, config.target, info, path)
    state_path.unlink(missing_ok=True)
    _log(f"[{config.name}] target saved to {path} (seed used {info['seed_used']})")
    return path


def _decompose(
    config: ExperimentConfig,
    target_path: Path,
    out: Path,
    device: str,
    checkpoint_every: int,
    cuda_graph: bool = False,
) -> Path:
    from spd.checks import check_target
    from spd.decomp.apd import decompose_apd
    from spd.decomp.storage import save_decomposition
    from spd.decomp.train import decompose
    from spd.provenance import run_record
    from spd.targets.registry import load_target

    target, trained, info = load_target(target_path, device)
    check_target(target_path, trained, config)
    spd = config.decomposition
    restarts = (
        f" restarts={spd.restarts} (x{spd.restart_steps} steps)"
        if isinstance(spd, SPDConfig) and spd.restarts > 1
        else ""
    )
    _log(
        f"[{config.name}] {spd.method.upper()}: C={spd.C} steps={spd.steps} "
        f"batch={spd.batch_size} seed={spd.seed}{restarts}"
    )
    state_path = out / TRAINING_STATE_FILE
    start = time.perf_counter()
    model: ComponentModel | APDModel
    if isinstance(spd, APDConfig):
        model, history = decompose_apd(target, spd, _log, state_path, checkpoint_every)
    else:
        result = decompose(target, spd, _log, state_path, checkpoint_every, cuda_graph=cuda_graph)
        model, history = result.model, result.loss_history
    elapsed = time.perf_counter() - start
    record = {
        "target_fingerprint": info["fingerprint"],
        **run_record(device, torch.get_num_threads(), elapsed),
    }
    path = out / DECOMPOSITION_FILE
    save_decomposition(model, spd, record, path)
    model.remove_hooks()
    write_parquet(history.assign(experiment=config.name, seed=spd.seed), out / LOSSES_FILE)
    state_path.unlink(missing_ok=True)
    _log(f"[{config.name}] decomposition saved to {path} ({elapsed:.1f} s)")
    return path


def _evaluate(
    config: ExperimentConfig, target_path: Path, decomposition_path: Path, out: Path, device: str
) -> Path:
    from spd.checks import check_decomposition, check_fingerprint, check_target
    from spd.decomp.storage import load_decomposition
    from spd.evaluate.causal_importance_metrics import evaluation_ci
    from spd.evaluate.exports import ci_histogram_table, ci_probe_table
    from spd.evaluate.recovery import verdict
    from spd.evaluate.report import metric_rows, metrics_table
    from spd.evaluate.run_record import write_run_record
    from spd.families.registry import family
    from spd.targets.registry import load_target, missing_features

    target, target_config, info = load_target(target_path, device)
    check_target(target_path, target_config, config)
    model, made, record = load_decomposition(decomposition_path, target)
    check_decomposition(decomposition_path, made, config)
    check_fingerprint(
        decomposition_path,
        cast(str | None, record.get("target_fingerprint")),
        str(info["fingerprint"]),
    )
    # The run's own settings (a --steps or --seed override included) identify its results.
    run_config = config.model_copy(update={"decomposition": made})
    run_hash = settings_hash(run_config)
    missing = missing_features(target.model, target_config)
    if isinstance(made, APDConfig):
        rows = _apd_rows(model, target_config, config)
        family_tables: dict[str, pd.DataFrame] = {}
    else:
        from spd.decomp.component_model import ComponentModel

        assert isinstance(model, ComponentModel)  # an SPD config loads an SPD decomposition
        ci = evaluation_ci(model, target_config.n_features, made, config.evaluation)
        rows = metric_rows(model, ci, target_config, config.evaluation)
        # What the family's figures draw besides CIs (TMS weights, residual-MLP neuron contributions).
        family_tables = {
            CI_PROBES_FILE: ci_probe_table(ci.probes),
            CI_HISTOGRAM_FILE: ci_histogram_table(ci.random),
        }
        family_tables |= family(target_config).tables(model, target_config, made)
    metrics = metrics_table(
        rows, config.name, made.seed, run_hash, target_config.family, made.method
    )
    provenance = {"experiment": config.name, "seed": made.seed}
    for name, table in family_tables.items():
        write_parquet(table.assign(**provenance), out / name)
    path = out / METRICS_FILE
    write_parquet(metrics, path)
    summary = {
        f"{r['layer']}/{r['metric']}": round(float(cast(float, r["value"])), 4) for r in rows
    }
    _log(yaml.safe_dump(summary, sort_keys=False).rstrip())
    outcome = verdict(rows, target_config, made.method, missing)
    write_run_record(out / RUN_RECORD_FILE, run_config, run_hash, info, record, outcome)
    _log(f"[{config.name}] ground-truth recovery: {outcome.text}")
    _log(f"[{config.name}] metrics saved to {path}")
    return path


def _apd_rows(model, target_config, config: ExperimentConfig) -> list[dict[str, object]]:
    """APD has no causal importances: each family scores it its own way (TMS by MMCS and ML2R, the
    residual MLP by the neuron contributions of each feature's highest-attribution component)."""
    from spd.families.registry import family

    metric_rows = family(target_config).apd_metric_rows(model, config.evaluation)
    return [
        {"layer": layer, "metric": metric, "value": float(value), "unit": unit}
        for layer, metric, value, unit in metric_rows
    ]


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


def _summary(run_dir: Path, metrics_json: Path, losses_csv: Path) -> None:
    from spd.evaluate.run_record import read_run_record
    from spd.evaluate.summary import loss_curve, metric_summary
    from spd.io import atomic_write

    if (run_dir / METRICS_FILE).is_file() and not (run_dir / RUN_RECORD_FILE).is_file():
        raise ConfigError(
            f"{run_dir / RUN_RECORD_FILE}: not found (the run was evaluated before runs kept a "
            "record): evaluate it again with `spd evaluate`, or rerun its snakemake target"
        )
    names = [METRICS_FILE, LOSSES_FILE, RUN_RECORD_FILE]
    metrics_path, losses_path, record_path = _run_tables([run_dir], names)[0]
    metrics, losses = read_parquet(metrics_path), read_parquet(losses_path)
    summary = metric_summary(metrics, losses, read_run_record(record_path))
    text = json.dumps(summary, indent=2, sort_keys=True) + "\n"
    atomic_write(metrics_json, lambda tmp: tmp.write_text(text))
    atomic_write(losses_csv, lambda tmp: loss_curve(losses).to_csv(tmp, index=False))
    _log(f"summary saved to {metrics_json} and {losses_csv}")


def _report(params_path: Path, metrics_root: Path, out: Path) -> None:
    from spd.io import atomic_write
    from spd.record import results_report

    text = results_report(load_params(params_path), metrics_root)
    atomic_write(out, lambda tmp: tmp.write_text(text))
    _log(f"results report saved to {out}")


def _run_tables(run_dirs: list[Path], names: Sequence[str]) -> list[list[Path]]:
    """Every run folder's tables, checked to exist before anything is read."""
    return [[_require_file(run / name, "run folder:") for name in names] for run in run_dirs]


def _figures(run_dirs: list[Path], out: Path, table1_path: Path | None) -> None:
    """One page per run; every run must be of one toy family, whose page it gets."""
    from spd.evaluate.table1 import check_single_config
    from spd.families.base import DEFAULT_FIGURE_TABLES
    from spd.families.registry import family

    metrics = pd.concat(read_parquet(paths[0]) for paths in _run_tables(run_dirs, [METRICS_FILE]))
    check_single_config(metrics)
    families = sorted(set(metrics.get("family", pd.Series(["tms"]))))
    if len(families) != 1:
        raise ConfigError(
            f"figures: runs of different target families ({', '.join(families)}); draw them apart"
        )
    runs_family = family(families[0])
    table = None if table1_path is None else read_parquet(table1_path)
    if not runs_family.write_figures(_run_tables(run_dirs, runs_family.figure_tables), out, table):
        from spd.figures.ci_pages import read_ci_run, write_ci_figures

        write_ci_figures(
            [read_ci_run(*paths) for paths in _run_tables(run_dirs, DEFAULT_FIGURE_TABLES)], out
        )
    _log(f"figures saved to {out}")


def _table1(run_dirs: list[Path], out_stem: Path) -> None:
    from spd.evaluate.table1 import table1, table1_markdown
    from spd.io import atomic_write

    metrics = pd.concat(read_parquet(paths[0]) for paths in _run_tables(run_dirs, [METRICS_FILE]))
    table = table1(metrics)
    write_parquet(table, out_stem.with_suffix(".parquet"))
    markdown = table1_markdown(table)
    atomic_write(out_stem.with_suffix(".md"), lambda tmp: tmp.write_text(markdown))
    _log(markdown.rstrip())
    _log(f"Table 1 saved to {out_stem}.md and {out_stem}.parquet")


def _over_params(args: argparse.Namespace) -> None:
    """The figures made of runs that params.yaml names: a sweep, robustness, SPD vs APD."""
    from spd.figures import collect

    params = load_params(args.params)
    if args.command == "sweep-figures":
        from spd.figures.sweep import write_sweep_figures

        points = collect.sweep_points(params, args.sweep, args.experiment, args.runs_root)
        setting = params.sweeps[args.sweep].setting
        write_sweep_figures(points, args.experiment, args.sweep, setting, args.out)
    elif args.command == "robustness":
        from spd.figures.robustness import write_robustness_figures

        summary = _some_done(collect.robustness_summary(params, args.runs_root, args.partial))
        _log(summary.to_string(index=False))
        settings = {name: sweep.setting for name, sweep in params.sweeps.items()}
        write_robustness_figures(summary, settings, args.out)
    else:
        from spd.figures.comparison import write_comparison_figures

        runs = _some_done(
            collect.comparison_runs(params, args.runs_root, args.benchmarks_root, args.partial)
        )
        _log(runs.to_string(index=False))
        write_comparison_figures(runs, args.out)
    _log(f"figures saved to {args.out}")


def _some_done(runs: pd.DataFrame) -> pd.DataFrame:
    if runs.empty or not runs["done"].any():
        raise ConfigError("no run that this figure draws is evaluated yet (or params names none)")
    return runs


def _require_file(path: Path, flag: str) -> Path:
    if not path.is_file():
        raise ConfigError(f"{flag} {path}: file not found")
    return path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="spd", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        source = sub.add_mutually_exclusive_group(required=True)
        source.add_argument("--experiment", help="experiment name in --params (e.g. tms_5-2)")
        source.add_argument("--config", type=Path, help="a single-experiment YAML file instead")
        sub.add_argument(
            "--params", type=Path, default=Path("params.yaml"), help="default: params.yaml"
        )
        sub.add_argument("--out", type=Path, required=True, help="output folder")
        sub.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
        sub.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's)")
        return sub

    train = add("train-target", "Train the experiment's target model; writes target.pt.")
    train.add_argument("--seed", type=int, help="override target.seed (first seed tried)")
    decompose = add(
        "decompose", "Decompose a trained target; writes decomposition.pt, losses.parquet."
    )
    decompose.add_argument("--target", type=Path, required=True, help="target.pt to decompose")
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
            help=f"steps between saves of the training state ({TARGET_STATE_FILE}, "
            f"{TRAINING_STATE_FILE}), from which a rerun resumes (default 1000)",
        )
    evaluate = add(
        "evaluate", "Score a decomposition against the ground truth; writes metrics.parquet."
    )
    evaluate.add_argument("--target", type=Path, required=True, help="target.pt")
    evaluate.add_argument("--decomposition", type=Path, required=True, help="decomposition.pt")

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
    over_params = {
        "sweep-figures": "A sweep's CI heatmaps (paper figure 8 style), one column per value.",
        "robustness": "robustness.pdf: SPD's recovery on TMS across seeds and across every sweep.",
        "compare": "method_comparison.pdf: SPD vs APD cost, MMCS and ML2R per seed.",
    }
    for name, help_text in over_params.items():
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

    args = parser.parse_args(argv)
    for name, value in vars(args).items():
        # Python 3.11's argparse reads `--steps=--` as an empty list instead of refusing it.
        if value == [] and name != "runs":
            parser.error(f"argument --{name.replace('_', '-')}: expected one argument")
    try:
        if args.command == "summary":
            _summary(args.run, args.metrics, args.losses)
            return 0
        if args.command == "report":
            _report(args.params, args.metrics_root, args.out)
            return 0
        if args.command in over_params:
            _over_params(args)
            return 0
        if args.command in ("figures", "table1"):
            runs = _selected_runs(args.runs, args.all_runs, args.runs_root)
            if args.command == "figures":
                _figures(runs, args.out, args.table1)
            else:
                _table1(runs, args.out)
            return 0
        if args.config is not None:
            config = load_experiment_config(args.config)
        else:
            config = load_params(args.params).experiment(args.experiment)
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
        if args.command == "train-target":
            _train_target(config, args.out, device, args.checkpoint_every)
        elif args.command == "decompose":
            target_path = _require_file(args.target, "--target")
            _decompose(
                config, target_path, args.out, device, args.checkpoint_every, args.cuda_graph
            )
        elif args.command == "evaluate":
            _evaluate(
                config,
                _require_file(args.target, "--target"),
                _require_file(args.decomposition, "--decomposition"),
                args.out,
                device,
            )
        else:
            target_path = _train_target(config, args.out, device, args.checkpoint_every)
            decomposition_path = _decompose(
                config, target_path, args.out, device, args.checkpoint_every, args.cuda_graph
            )
            _evaluate(config, target_path, decomposition_path, args.out, device)
    except (ConfigError, CheckpointError) as error:
        print(f"spd: error: {error}", file=sys.stderr)
        return 2
    except DivergenceError as error:
        print(f"spd: error: [{config.name}, config {config_hash(config)}] {error}", file=sys.stderr)
        return 3
    return 0
