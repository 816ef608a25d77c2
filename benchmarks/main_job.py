"""The main job end to end, as a user runs it from a fresh clone: its wall time, each job's time,
and each run's verdict beside the record's.

    python benchmarks/main_job.py                      # snakemake --cores 2 results/figures/tms.pdf
    python benchmarks/main_job.py --cores 8 -- --workflow-profile profiles/gpu
    python benchmarks/main_job.py --params my_params.yaml   # another params file's main job

The repository's HEAD (not the working tree's uncommitted changes) is cloned into a temporary
folder, where the C++ kernels are built afresh (a TORCH_EXTENSIONS_DIR of its own; not with
--reuse-kernels) and the main job runs with this Python environment and the clone's code. Progress goes to stderr; the result is one
JSONL line on stdout (append it to benchmarks/results/main_job.jsonl): the job's wall time, every
benchmarked job's (train_target, decompose), and per run its verdict beside the record's summary
of that run (see `run_verdicts`), with the machine, its load before the job, torch version and
commit.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
from spd_benchmark import emit

from spd.optim.loop import clock

REPO = Path(__file__).resolve().parents[1]


def run_main_job(clone: Path, cores: int, target: str, extra: list[str], env: dict) -> float:
    """Runs snakemake in `clone`, echoing its progress lines with the elapsed time; returns the
    wall time in seconds. Exits with snakemake's log tail if it fails."""
    # this interpreter's snakemake; --config takes what follows it, so the target comes first
    command = [sys.executable, "-m", "snakemake", "--cores", str(cores), target, *extra]
    log_path = clone / "main_job.log"
    started = time.perf_counter()
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            command, cwd=clone, env=env, stdout=log, stderr=subprocess.STDOUT, text=True
        )
        seen = 0
        while seen >= 0:
            done = process.poll() is not None  # then one last read of the whole log
            time.sleep(0 if done else 5)
            lines = log_path.read_text().splitlines(keepends=True)
            complete = [line for line in lines[seen:] if line.endswith("\n") or done]
            for line in complete:
                if "steps (" in line and "done" in line:  # snakemake's 'N of M steps (x%) done'
                    elapsed = clock(time.perf_counter() - started)
                    print(f"main job: {line.strip()} | elapsed {elapsed}", file=sys.stderr)
            seen = -1 if done else seen + len(complete)
    seconds = time.perf_counter() - started
    if process.returncode != 0:
        tail = "\n".join(log_path.read_text().splitlines()[-30:])
        sys.exit(f"{tail}\nmain job: snakemake failed (exit {process.returncode}); log above")
    return seconds


def job_times(clone: Path) -> dict[str, float]:
    """Wall seconds of each job snakemake benchmarked, by its benchmark file's path under
    benchmarks/runs/ (e.g. 'decompose/tms_5-2/seed0')."""
    root = clone / "benchmarks/runs"
    return {
        path.relative_to(root).with_suffix("").as_posix(): round(
            float(pd.read_csv(path, sep="\t")["s"].iloc[0]), 1
        )
        for path in sorted(root.rglob("*.tsv"))
    }


def _verdict_word(summary: dict) -> str | None:
    recovered = summary.get("verdict", {}).get("recovered")
    return None if recovered is None else ("recovers" if recovered else "misses")


def _where(summary: dict) -> str | None:
    """'AMD EPYC, cpu, 1 thread(s)' from a summary's provenance; None without one."""
    provenance = summary.get("provenance")
    if not provenance:
        return None
    return f"{provenance['machine']}, {provenance['device']}, {provenance['threads']} thread(s)"


def _values(summary: dict) -> dict:
    """A summary's metrics, losses and verdict: what two runs of the same bits share."""
    return {key: value for key, value in summary.items() if key not in ("run", "provenance")}


def run_verdicts(clone: Path, env: dict) -> dict[str, dict[str, object]]:
    """Per run folder of the clone ('tms_5-2/seed0'): its verdict, decomposition time, device and
    threads, and the record's summary of that run beside it: its verdict and machine, the same
    settings (config hash), and the same summary values (metrics as summaries round them, final
    losses, verdict), which a run of the record's settings, torch build, machine kind and thread
    count gives bit for bit."""
    runs = {}
    for record in sorted((clone / "results/runs").glob("*/seed*/run.json")):
        folder = record.parent
        name = f"{folder.parent.name}/{folder.name}"
        summary_path = folder / "main_job_summary.json"
        summary = subprocess.run(
            [sys.executable, "-m", "spd", "summary", str(folder), "--metrics", str(summary_path)]
            + ["--losses", str(folder / "main_job_losses.csv")],
            cwd=clone,
            check=False,
            env=env,
            capture_output=True,
            text=True,
        )
        if summary.returncode != 0:
            sys.exit(f"main job: spd summary {folder}: {summary.stderr.strip()[-500:]}")
        ours = json.loads(summary_path.read_text())
        recorded_path = clone / "results/metrics" / f"{name}.json"
        recorded = json.loads(recorded_path.read_text()) if recorded_path.is_file() else None
        same_settings = (
            recorded is not None
            and recorded.get("run", {}).get("config_hash") == ours["run"]["config_hash"]
        )
        runs[name] = {
            "verdict": _verdict_word(ours),
            "decompose_s": ours["provenance"]["wall_s"],
            "device": ours["provenance"]["device"],
            "threads": ours["provenance"]["threads"],
            "record_verdict": None if recorded is None else _verdict_word(recorded),
            "record_machine": None if recorded is None else _where(recorded),
            "record_same_settings": same_settings,
            "record_same_values": same_settings and _values(recorded) == _values(ours),
        }
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--target", default="results/figures/tms.pdf")
    parser.add_argument("--keep", action="store_true", help="keep the clone (its path on stderr)")
    parser.add_argument(
        "--reuse-kernels",
        action="store_true",
        help="use this environment's C++ kernel builds (default: build them afresh, in the clone)",
    )
    parser.add_argument(
        "--params", type=Path, help="a params file to run instead of params.yaml (copied in)"
    )
    parser.add_argument("snakemake_args", nargs="*", help="after --: passed on to snakemake")
    args = parser.parse_args()
    if args.params is not None and not args.params.is_file():
        sys.exit(f"main job: --params {args.params}: no such file")
    if args.params is not None and "--config" in args.snakemake_args:
        sys.exit("main job: --params sets snakemake's --config; give one or the other")
    workspace = Path(tempfile.mkdtemp(prefix="spd-main-job-"))
    clone = workspace / "spd-pipeline"
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
    extra = list(args.snakemake_args)
    if args.params is not None:
        shutil.copy(args.params, clone / "main_job_params.yaml")
        extra += ["--config", "params=main_job_params.yaml"]
    source = [str(clone / "src"), os.environ.get("PYTHONPATH", "")]
    path = [str(Path(sys.executable).parent), os.environ.get("PATH", "")]  # the rules' `python`
    env = os.environ | {
        "PYTHONPATH": os.pathsep.join(filter(None, source)),
        "PATH": os.pathsep.join(filter(None, path)),
    }
    if not args.reuse_kernels:
        env["TORCH_EXTENSIONS_DIR"] = str(workspace / "torch_extensions")
    print(f"main job: running in {clone}", file=sys.stderr)
    load_before = round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None
    seconds = run_main_job(clone, args.cores, args.target, extra, env)
    runs = run_verdicts(clone, env)
    devices = {str(run["device"]) for run in runs.values()}
    line = {
        "benchmark": "main_job",
        "target": args.target,
        "cores": args.cores,
        "fresh_kernel_builds": not args.reuse_kernels,
        "params": "params.yaml" if args.params is None else str(args.params),
        "load_avg_1min_before": load_before,
        "snakemake_args": extra,
        "wall_s": round(seconds, 1),
        "jobs_s": job_times(clone),
        "runs": runs,
    }
    emit(line, "cuda" if "cuda" in devices else "cpu", source_dir=clone / "src/spd")
    if not args.keep:
        shutil.rmtree(workspace)


if __name__ == "__main__":
    main()
