"""What a stage is given against what it is asked, before any compute: the target's and the
decomposition's settings against the experiment's, the output folder, the memory a run needs.

Each check raises ConfigError with one line that names both sides of the mismatch.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from pydantic import BaseModel

from spd.config import APDConfig, ConfigError, ExperimentConfig, SPDConfig, TargetConfig
from spd.families.registry import family
from spd.targets.base import Target
from spd.targets.registry import untrained_target

# Settings a user may override on the command line (`spd decompose --seed/--steps`): a
# decomposition that differs from its experiment only in these is still that experiment's run.
OVERRIDABLE = ("seed", "steps")


def _differences(given: BaseModel, asked: BaseModel, ignore: tuple[str, ...] = ()) -> list[str]:
    got, want = given.model_dump(mode="json"), asked.model_dump(mode="json")
    keys = [key for key in want | got if key not in ignore and got.get(key) != want.get(key)]
    return [f"{key}={got.get(key)!r} (experiment: {want.get(key)!r})" for key in keys]


def check_target(path: Path, trained: TargetConfig, config: ExperimentConfig) -> None:
    """The checkpoint at `path` was trained with the settings `config` asks for."""
    if trained.family != config.target.family:
        raise ConfigError(
            f"{path}: a {trained.family} target, but experiment '{config.name}' asks for "
            f"a {config.target.family} target"
        )
    differences = _differences(trained, config.target)
    if differences:
        raise ConfigError(
            f"{path}: trained with target {', '.join(differences)}, not as experiment "
            f"'{config.name}' asks"
        )


def check_decomposition(path: Path, made: SPDConfig | APDConfig, config: ExperimentConfig) -> None:
    """The decomposition at `path` was made with `config`'s settings, up to the overridable ones."""
    if made.method != config.decomposition.method:
        raise ConfigError(
            f"{path}: an {made.method.upper()} decomposition, but experiment '{config.name}' "
            f"runs {config.decomposition.method.upper()}"
        )
    differences = _differences(made, config.decomposition, ignore=OVERRIDABLE)
    if differences:
        raise ConfigError(
            f"{path}: made with decomposition {', '.join(differences)}, not as experiment "
            f"'{config.name}' asks"
        )


def check_fingerprint(path: Path, made_from: str | None, target_fingerprint: str) -> None:
    """The decomposition was made from this very target (checkpoints that record it)."""
    if made_from is not None and made_from != target_fingerprint:
        raise ConfigError(
            f"{path}: made from target {made_from}, not from the given target {target_fingerprint}"
        )


def check_output_folder(out: Path) -> None:
    """`out` is a writable folder, or one its nearest existing ancestor lets us make; nothing is
    created here (the first file written makes it), so a refused run leaves no trace."""
    problem = _unwritable_folder(out)
    if problem is not None:
        raise ConfigError(f"--out {out}: {problem}")


def check_output_file(path: Path, option: str) -> None:
    """The file `path`, given as `option`, can be written: it is no folder, and its folder is
    writable or can be made (nothing is created here)."""
    if path.is_dir():
        raise ConfigError(f"{option} {path}: a folder, not a file")
    problem = _unwritable_folder(path.parent)
    if problem is not None:
        raise ConfigError(f"{option} {path}: its folder {path.parent}: {problem}")


def _unwritable_folder(out: Path) -> str | None:
    """Why `out` cannot be a folder to write in, or None where it can."""
    existing = out
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return "not a folder (it or a parent is a file)"
    if not os.access(existing, os.W_OK | os.X_OK):
        return "not writable" if existing == out else f"no permission to create it in {existing}"
    return None


def decomposition_bytes(target: Target, config: SPDConfig | APDConfig) -> int:
    """A rough upper estimate of a decomposition's peak memory: parameters with their gradients
    and Adam moments, plus per-example activations of every masked pass (about 64 bytes per
    example x subcomponent x layer, measured on the TMS and residual-MLP runs), plus a base for
    the runtime."""
    modules = dict(target.model.named_modules())
    layers = target.restricted_to(config.modules).decomposed_modules
    widths = [(modules[name].in_features, modules[name].out_features) for name in layers]

    def per_subcomponent(d_in: int, d_out: int) -> int:
        if isinstance(config, APDConfig):
            return (config.m or min(d_in, d_out)) * (d_in + d_out)
        return d_in + d_out + 3 * config.d_gate + 1

    parameters = sum(config.C * per_subcomponent(d_in, d_out) for d_in, d_out in widths)
    activations = config.batch_size * sum(
        64 * config.C + 40 * (d_in + d_out) for d_in, d_out in widths
    )
    return 400_000_000 + 16 * parameters + activations


def available_bytes(device: str) -> int:
    if device == "cuda":
        return int(torch.cuda.get_device_properties(0).total_memory)
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def target_bytes(config: TargetConfig) -> int:
    """A rough upper estimate of a target training's peak memory, as its family gives it."""
    return family(config).target_bytes(config)


def _too_large(settings: str, needed: int, available: int, device: str) -> ConfigError:
    return ConfigError(
        f"{settings} needs about {needed / 1e9:.3g} GB, more than the {available / 1e9:.3g} GB "
        f"of this {device}; lower one of them"
    )


def check_fits_in_memory(config: ExperimentConfig, device: str, command: str = "run") -> None:
    """What `command` (train-target, decompose, evaluate or run) builds fits in the device's
    memory, by estimates: the target, the decomposition's training, the evaluation batch. The
    target's shapes come from its settings (an untrained copy), so this runs before the target
    is even trained."""
    available = available_bytes(device)
    target = config.target
    needed = target_bytes(target)
    if needed > available:
        sizes = ", ".join(
            f"target.{key}={getattr(target, key)}"
            for key in ("n_features", "d_hidden", "d_embed", "d_mlp", "n_layers", "batch_size")
            if hasattr(target, key)
        )
        raise _too_large(sizes, needed, available, device)
    if command == "train-target":
        return
    decomposition = config.decomposition
    untrained = untrained_target(target)
    if command in ("decompose", "run"):
        needed = decomposition_bytes(untrained, decomposition)
        if needed > available:
            raise _too_large(
                f"decomposition.C={decomposition.C} with decomposition.batch_size="
                f"{decomposition.batch_size}",
                needed,
                available,
                device,
            )
    if command in ("evaluate", "run"):
        # The evaluation runs the decomposition on one batch of n_random examples.
        n_random = config.evaluation.n_random
        needed = decomposition_bytes(
            untrained, decomposition.model_copy(update={"batch_size": n_random})
        )
        if needed > available:
            raise _too_large(
                f"evaluation.n_random={n_random} with decomposition.C={decomposition.C}",
                needed,
                available,
                device,
            )
