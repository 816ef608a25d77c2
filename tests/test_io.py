import pytest
import torch

from spd.io import CheckpointError, atomic_write, load_checkpoint, save_checkpoint


def test_failed_write_leaves_previous_file_untouched(tmp_path):
    path = tmp_path / "out.txt"
    path.write_text("old")

    def crash(tmp):
        tmp.write_text("half")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        atomic_write(path, crash)
    assert path.read_text() == "old"
    assert list(tmp_path.iterdir()) == [path]  # no temp file left behind


def test_truncated_checkpoint_is_rejected(tmp_path):
    path = tmp_path / "ck.pt"
    save_checkpoint({"kind": "target", "x": torch.arange(1000)}, path)
    assert load_checkpoint(path, "target")["x"].sum() == 499500
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="unreadable"):
        load_checkpoint(path, "target")


def test_wrong_kind_is_rejected(tmp_path):
    path = tmp_path / "ck.pt"
    save_checkpoint({"kind": "decomposition"}, path)
    with pytest.raises(CheckpointError, match="not a 'target' checkpoint"):
        load_checkpoint(path, "target")


def test_atomic_write_removes_temporary_files_a_killed_writer_left(tmp_path):
    from spd.io import atomic_write

    stale = tmp_path / ".losses.parquet.abc123.tmp"
    stale.write_bytes(b"half a table")
    other = tmp_path / ".metrics.parquet.abc123.tmp"
    other.write_bytes(b"another file's")
    atomic_write(tmp_path / "losses.parquet", lambda tmp: tmp.write_bytes(b"done"))
    assert (tmp_path / "losses.parquet").read_bytes() == b"done"
    assert not stale.exists() and other.exists()
