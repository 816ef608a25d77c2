"""Stage `spd decompose`: a trained target decomposed by SPD or APD, with the run's config."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch

from spd.config import APDConfig, ExperimentConfig, SPDConfig
from spd.io import write_parquet
from spd.pipeline.layout import RunFolder
from spd.pipeline.log import log
from spd.pipeline.run_config import write_run_config

if TYPE_CHECKING:
    from spd.decomp.apd import APDModel
    from spd.decomp.component_model import ComponentModel


def decompose(
    config: ExperimentConfig,
    target_path: Path,
    out: Path,
    device: str,
    checkpoint_every: int,
    cuda_graph: bool = False,
) -> Path:
    """Decomposes the target at `target_path` (checked to be `config`'s) as `config` says, on
    `device`, resuming from the training state saved in `out` every `checkpoint_every` steps;
    writes the decomposition, its loss curve and the run's config into `out` and returns the
    decomposition's path. With `cuda_graph`, SPD steps replay as CUDA graphs."""
    from spd.checks import check_target
    from spd.decomp.apd import decompose_apd
    from spd.decomp.storage import save_decomposition
    from spd.decomp.train import decompose as decompose_spd
    from spd.provenance import run_record
    from spd.targets.registry import load_target

    folder = RunFolder(out)
    target, trained, info = load_target(target_path, device)
    check_target(target_path, trained, config)
    spd = config.decomposition
    restarts = (
        f" restarts={spd.restarts} (x{spd.restart_steps} steps)"
        if isinstance(spd, SPDConfig) and spd.restarts > 1
        else ""
    )
    log(
        f"[{config.name}] {spd.method.upper()}: C={spd.C} steps={spd.steps} "
        f"batch={spd.batch_size} seed={spd.seed}{restarts}"
    )
    state_path = folder.decomposition_state
    model: ComponentModel | APDModel
    if isinstance(spd, APDConfig):
        model, history, elapsed = decompose_apd(target, spd, log, state_path, checkpoint_every)
    else:
        result = decompose_spd(
            target, spd, log, state_path, checkpoint_every, cuda_graph=cuda_graph
        )
        model, history, elapsed = result.model, result.loss_history, result.seconds
    record = {
        "target_fingerprint": info["fingerprint"],
        **run_record(device, torch.get_num_threads(), elapsed),
    }
    save_decomposition(model, spd, record, folder.decomposition)
    model.remove_hooks()
    write_parquet(history.assign(experiment=config.name, seed=spd.seed), folder.losses)
    write_run_config(folder, config)
    state_path.unlink(missing_ok=True)
    log(f"[{config.name}] decomposition saved to {folder.decomposition} ({elapsed:.1f} s)")
    return folder.decomposition
