"""Atomic file writes and checkpoint loading with clear errors.

Every output is written to a temporary file in the destination folder, fsynced, then renamed, so
a killed process never leaves a file that looks finished.
"""

from __future__ import annotations

import glob
import os
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd
import torch


class CheckpointError(RuntimeError):
    """A checkpoint or table that is missing, truncated or of the wrong kind; the message names
    the file."""


def current_umask() -> int:
    """The process umask. On Linux it is read from /proc/self/status, which changes nothing;
    elsewhere it is set and restored, which is racy against threads that create files meanwhile
    but harmless here."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    old = os.umask(0o022)
    os.umask(old)
    return old


@contextmanager
def atomic_path(destination: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `destination`; rename it into place only on success, then
    remove the temporary files a killed earlier writer of the same destination left behind."""
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    prefix = f".{destination.name}."
    fd, tmp_name = tempfile.mkstemp(dir=destination.parent, prefix=prefix, suffix=".tmp")
    try:
        # mkstemp creates the file 0600; give it the mode a plain open() would have
        os.fchmod(fd, 0o666 & ~current_umask())
    finally:
        os.close(fd)
    tmp_path = Path(tmp_name)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp_path, destination)
        for stale in destination.parent.glob(f"{glob.escape(prefix)}*.tmp"):
            stale.unlink(missing_ok=True)
    finally:
        tmp_path.unlink(missing_ok=True)


def atomic_write(destination: str | Path, write: Callable[[Path], Any]) -> None:
    with atomic_path(destination) as tmp:
        write(tmp)


def save_checkpoint(payload: dict[str, Any], destination: str | Path) -> None:
    """torch.save into an open file: given a path, torch names the zip's records after the file's
    stem, here the random temporary name, and equal payloads would give different bytes."""

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as handle:
            torch.save(payload, handle)

    atomic_write(destination, write)


def load_checkpoint(
    path: str | Path,
    kind: str,
    fields: Mapping[str, type] | None = None,
    optional: Mapping[str, type] | None = None,
) -> dict[str, Any]:
    """Load a checkpoint written by `save_checkpoint` and check that it is of the expected kind,
    that it has every one of `fields` and that these (and any `optional` ones it has) are of the
    types given."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - torch raises many types for truncated files
        raise CheckpointError(
            f"{path}: unreadable checkpoint ({error.__class__.__name__})"
        ) from None
    if not isinstance(payload, dict) or payload.get("kind") != kind:
        raise CheckpointError(f"{path}: not a '{kind}' checkpoint")
    for key, expected in {**(optional or {}), **(fields or {})}.items():
        if key not in payload:
            if fields and key in fields:
                raise CheckpointError(f"{path}: damaged '{kind}' checkpoint (no '{key}' in it)")
            continue
        if not isinstance(payload[key], expected):
            raise CheckpointError(
                f"{path}: damaged '{kind}' checkpoint (its '{key}' is a "
                f"{type(payload[key]).__name__}, not a {expected.__name__})"
            )
    return payload


def write_parquet(frame: pd.DataFrame, destination: str | Path) -> None:
    atomic_write(destination, lambda tmp: frame.to_parquet(tmp, index=False))


def read_parquet(path: str | Path) -> pd.DataFrame:
    """Read a Parquet table; a missing, truncated or corrupt file raises CheckpointError naming it."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: table not found")
    try:
        return pd.read_parquet(path)
    except Exception as error:  # noqa: BLE001 - pyarrow raises several types for damaged files
        raise CheckpointError(
            f"{path}: unreadable Parquet table ({error.__class__.__name__})"
        ) from None
