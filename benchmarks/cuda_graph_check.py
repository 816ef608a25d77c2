"""SPD with `--cuda-graph` against eager steps on a CUDA device: same seed, same untrained target of
each experiment's shape; prints one JSON line per experiment with both step rates and how far the
two loss curves drift apart, then checks that a graph run paused and resumed from its saved state
matches an uninterrupted one.

    python benchmarks/cuda_graph_check.py tms_5-2 tms_40-10 resid_mlp1 --steps 1000

The graph times include recording the graph once.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import torch
from spd_benchmark import untrained_target  # this folder's step-time benchmark

from spd.config import SPDConfig, load_params
from spd.decomp.train import _train, decompose
from spd.targets.base import Target

PARAMS = Path(__file__).parents[1] / "params.yaml"


def target_and_spd(name: str, params: Path) -> tuple[Target, SPDConfig]:
    config = load_params(params).experiment(name)
    assert isinstance(config.decomposition, SPDConfig), "--cuda-graph records SPD steps"
    return untrained_target(config, "cuda"), config.decomposition


def compare(name: str, steps: int, params: Path) -> dict[str, object]:
    target, spd = target_and_spd(name, params)
    spd = spd.model_copy(update={"steps": steps, "log_every": 1})
    decompose(
        target, spd.model_copy(update={"steps": 5}), log=lambda _: None
    )  # CUDA and cuBLAS set-up
    runs = {}
    for graph in (False, True):
        torch.cuda.synchronize()
        result = decompose(target, spd, log=lambda _: None, cuda_graph=graph)
        torch.cuda.synchronize()
        runs[graph] = result
    eager, graphed = runs[False].loss_history["total"], runs[True].loss_history["total"]
    drift = ((graphed - eager).abs() / eager.abs()).to_numpy()
    return {
        "config": name,
        "steps": steps,
        "eager_step_ms": round(1e3 * runs[False].seconds / steps, 3),
        "graph_step_ms": round(1e3 * runs[True].seconds / steps, 3),
        "max_rel_drift_first_10": float(drift[:10].max()),
        "max_rel_drift": float(drift.max()),
        "final_total_eager": float(eager.iloc[-1]),
        "final_total_graph": float(graphed.iloc[-1]),
    }


def resume_check(name: str, steps: int, params: Path) -> dict[str, object]:
    target, spd = target_and_spd(name, params)
    spd = spd.model_copy(update={"steps": steps, "log_every": 1})
    whole = _train(target, spd, lambda _: None, None, steps, cuda_graph=True)
    with tempfile.TemporaryDirectory() as scratch:
        state = Path(scratch) / "state.pt"
        _train(target, spd, lambda _: None, state, steps, stop_at=steps // 2, cuda_graph=True)
        resumed = _train(target, spd, lambda _: None, state, steps, cuda_graph=True)
    difference = max(
        (a - b).abs().max().item()
        for a, b in zip(
            whole.model.state_dict().values(), resumed.model.state_dict().values(), strict=True
        )
    )
    return {
        "config": name,
        "check": "graph run paused at half and resumed",
        "max_param_difference": difference,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("experiments", nargs="+")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--params", type=Path, default=PARAMS)
    args = parser.parse_args()
    for name in args.experiments:
        print(json.dumps(compare(name, args.steps, args.params)), flush=True)
    print(json.dumps(resume_check(args.experiments[0], args.steps, args.params)), flush=True)


if __name__ == "__main__":
    main()
