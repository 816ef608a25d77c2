"""The SPD loss of finished decompositions, each on the same fresh batches.

    python benchmarks/loss_of_runs.py results/runs/tms_5-2/seed0 results/runs/tms_5-2/seed1 \
        --target data/targets/tms_5-2/target.pt

A run that misses the ground truth with a *higher* loss than one that finds it (same target and
settings) is stuck in a local minimum: the objective prefers the ground truth, the optimisation
did not get there. Each run folder needs decomposition.pt (and target.pt, unless --target names
the target every run decomposed). Prints one JSON line per run: the mean of every loss term over
the batches, masks drawn afresh per batch.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from spd.config import SPDConfig
from spd.decomp.storage import load_decomposition
from spd.decomp.train import mean_spd_losses
from spd.targets.registry import load_target


def mean_losses(run: Path, target_path: Path, batches: int, seed: int) -> dict[str, float]:
    target, _, _ = load_target(target_path, "cpu")
    model, config = load_decomposition(run / "decomposition.pt", target)
    if not isinstance(config, SPDConfig):
        raise SystemExit(f"{run}: not an SPD decomposition")
    return mean_spd_losses(model, config, batches, torch.Generator().manual_seed(seed))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path, help="run folders")
    parser.add_argument("--target", type=Path, help="the runs' target.pt (default: each run's own)")
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1234, help="seed of the data and masks (same for every run)")
    args = parser.parse_args()
    for run in args.runs:
        target = args.target or run / "target.pt"
        print(json.dumps({"run": str(run), **mean_losses(run, target, args.batches, args.seed)}))


if __name__ == "__main__":
    main()
