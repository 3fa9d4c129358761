"""Atomic outputs (salsa2.utils.fsutil): modes follow the umask, killed writers leave nothing DVC sees and the
next run removes what dead processes left."""

from __future__ import annotations

import os
import shutil
import signal
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from helpers import REPO
from salsa2.utils.fsutil import atomic_dir, atomic_path, remove_stale_temps


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def umask022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_atomic_outputs_get_umask_modes_not_mkstemp_modes(tmp_path, umask022):
    with atomic_path(tmp_path / "model.pt") as tmp:
        tmp.write_bytes(b"x")
    with atomic_dir(tmp_path / "index") as tmp:
        (tmp / "sub").mkdir()
        with atomic_path(tmp / "sub" / "a.json") as inner:
            inner.write_text("{}")
    assert _mode(tmp_path / "model.pt") == 0o644
    assert _mode(tmp_path / "index") == 0o755
    assert _mode(tmp_path / "index" / "sub") == 0o755
    assert _mode(tmp_path / "index" / "sub" / "a.json") == 0o644
    os.umask(0o027)
    with atomic_path(tmp_path / "private.pt") as tmp:
        tmp.write_bytes(b"x")
    assert _mode(tmp_path / "private.pt") == 0o640


_KILLED_WRITER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from salsa2.utils.fsutil import atomic_dir
    with atomic_dir(Path(sys.argv[1])) as tmp:
        (tmp / "shard-00000.npy").write_bytes(b"x" * 1000)
        print("writing", flush=True)
        time.sleep(60)
""")


def test_killed_features_writer_leaves_nothing_dvc_sees_and_next_run_cleans_up(tmp_path):
    features = tmp_path / "data" / "features"
    (features / "cnn").mkdir(parents=True)
    (features / "cnn" / "old.npy").write_bytes(b"old")
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    proc = subprocess.Popen([sys.executable, "-c", _KILLED_WRITER, str(features / "cnn")], env=env,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "writing"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    leftovers = [p for p in features.iterdir() if p.name.startswith(".cnn.")]
    assert len(leftovers) == 1 and (leftovers[0] / "shard-00000.npy").exists()
    assert (features / "cnn" / "old.npy").read_bytes() == b"old"  # the old output is intact

    # DVC (with the repository's .dvcignore) does not see the leftover inside the declared dependency
    from dvc.repo import Repo

    Repo.init(str(tmp_path), no_scm=True)
    shutil.copy(REPO / ".dvcignore", tmp_path / ".dvcignore")
    repo = Repo(str(tmp_path))
    seen = sorted(Path(p).relative_to(features).as_posix() for p in repo.dvcignore.find(repo.fs, str(features)))
    assert seen == ["cnn/old.npy"]

    with atomic_dir(features / "cnn") as tmp:  # the next run removes the dead process's temp folder
        (tmp / "new.npy").write_bytes(b"new")
    assert sorted(p.name for p in features.iterdir()) == ["cnn"]
    assert sorted(p.name for p in (features / "cnn").iterdir()) == ["new.npy"]


def test_only_temps_of_dead_processes_are_removed(tmp_path):
    dead_pid = subprocess.Popen([sys.executable, "-c", "pass"])
    dead_pid.wait()
    live = tmp_path / f".out.{os.getppid()}.abcd1234.tmp"
    dead = tmp_path / f".out.{dead_pid.pid}.abcd1234.tmp"
    other = tmp_path / f".out.v2.{dead_pid.pid}.abcd1234.tmp"  # a temp of output "out.v2", not of "out"
    for p in (live, dead, other):
        p.mkdir()
    assert remove_stale_temps(tmp_path / "out") == [dead]
    assert live.exists() and other.exists() and not dead.exists()


@pytest.mark.parametrize("atomic", [atomic_path, atomic_dir])
def test_disk_full_and_read_only_name_the_output_and_keep_the_old(tmp_path, monkeypatch, atomic):
    import errno
    import tempfile

    out = tmp_path / "out" / "table.parquet"
    with atomic(out) as tmp:
        (tmp / "x" if tmp.is_dir() else tmp).write_text("old")
    with pytest.raises(OSError, match=r"out/table\.parquet: cannot write it \(No space left on device\); free") as err:
        with atomic(out):
            raise OSError(errno.ENOSPC, "No space left on device")  # what a full disk raises mid-write
    assert "\n" not in str(err.value)
    assert (out / "x" if out.is_dir() else out).read_text() == "old"
    assert sorted(p.name for p in out.parent.iterdir()) == ["table.parquet"]

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system", str(out.parent))

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    monkeypatch.setattr(tempfile, "mkdtemp", read_only)
    with pytest.raises(OSError, match=r"out/table\.parquet: cannot write it \(Read-only file system\)"):
        with atomic(out):
            pass
    with pytest.raises(FileNotFoundError, match="gone.wav"):  # an error of reading an input stays as it is
        monkeypatch.undo()
        with atomic(out):
            open(tmp_path / "gone.wav")
