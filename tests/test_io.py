import os
import stat

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


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_atomic_write_gives_the_file_the_umask_mode(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        atomic_write(tmp_path / "out.bin", lambda tmp: tmp.write_bytes(b"x"))
        save_checkpoint({"kind": "target"}, tmp_path / "ck.pt")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "out.bin").stat().st_mode) == mode
    assert stat.S_IMODE((tmp_path / "ck.pt").stat().st_mode) == mode


def test_current_umask_without_proc(monkeypatch):
    import builtins

    from spd import io

    real_open = builtins.open

    def no_proc(path, *args, **kwargs):
        if str(path).startswith("/proc/"):
            raise OSError("no /proc")
        return real_open(path, *args, **kwargs)

    old = os.umask(0o027)
    try:
        assert io.current_umask() == 0o027
        monkeypatch.setattr(builtins, "open", no_proc)
        assert io.current_umask() == 0o027
        assert os.umask(0o027) == 0o027  # left as it was
    finally:
        os.umask(old)


def test_equal_checkpoints_are_equal_bytes(tmp_path):
    # DVC and Snakemake compare outputs by content: a rerun must not change target.pt's hash
    payload = {"kind": "target", "x": torch.arange(10)}
    save_checkpoint(payload, tmp_path / "a" / "target.pt")
    save_checkpoint(payload, tmp_path / "b" / "target.pt")
    assert (tmp_path / "a/target.pt").read_bytes() == (tmp_path / "b/target.pt").read_bytes()
    assert load_checkpoint(tmp_path / "a/target.pt", "target")["x"].tolist() == list(range(10))
