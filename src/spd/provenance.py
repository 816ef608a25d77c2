"""Where a result came from: the code version and the machine a run used."""

from __future__ import annotations

import platform
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import torch


def _git(*args: str, cwd: Path) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, check=True, timeout=10
    ).stdout.strip()


def code_version(source_dir: Path | None = None) -> str:
    """`git describe` of the checkout the package (or `source_dir`) runs from, '-dirty' when the
    package's own files differ from that commit (results or docs changed beside it do not
    count); else the package version."""
    source_dir = source_dir or Path(__file__).resolve().parent
    try:
        described = _git("describe", "--always", "--tags", cwd=source_dir)
        if _git("status", "--porcelain", "--", ".", cwd=source_dir):
            described += "-dirty"
    except (OSError, subprocess.SubprocessError):
        described = ""
    try:
        package = version("spd-pipeline")
    except PackageNotFoundError:
        package = "unknown"
    return f"{package}+{described}" if described else package


def machine(device: str) -> str:
    """The processor (or GPU) a run used, in the words its vendor gives it."""
    if device == "cuda":
        return torch.cuda.get_device_name(0)
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def run_record(device: str, threads: int, wall_s: float) -> dict[str, object]:
    """How a stage ran: wall time, device and machine, threads, torch and code versions."""
    return {
        "wall_s": round(wall_s, 3),  # ms: a short run on a fast machine takes well under 0.1 s
        "device": device,
        "machine": machine(device),
        "threads": threads,
        "torch": str(torch.__version__),
        "code_version": code_version(),
    }
