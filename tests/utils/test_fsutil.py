"""Issue 14, files and state: modes follow the umask, killed writers leave nothing DVC sees, multi-file outputs
are replaced as one step (salsa2.utils.fsutil)."""

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


def _tables(n: int):
    import pandas as pd

    audio = pd.DataFrame({"audio_id": [f"a{i}" for i in range(n)], "path": [f"/x/{i}.wav" for i in range(n)],
                          "split": "train", "dataset": "d", "duration": 1.0, "sample_rate": 8000, "channels": 1})
    texts = [f"caption {n} {i}" for i in range(n)]
    captions = pd.DataFrame({"caption_id": [f"a{i}#0" for i in range(n)], "audio_id": audio["audio_id"],
                             "index": 0, "text": texts, "raw_text": texts})
    return audio, captions, pd.DataFrame({"audio_id": [], "path": [], "reason": []})


def test_killed_prepare_never_leaves_new_audio_with_old_captions(tmp_path, monkeypatch):
    import pandas as pd

    from salsa2.data.tables import read_tables, write_prepared

    out = tmp_path / "prepared"
    write_prepared(out, *_tables(2))
    real_to_csv = pd.DataFrame.to_csv

    def killed(self, *args, **kwargs):  # the process dies while writing the last file of the set
        real_to_csv(self, *args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(pd.DataFrame, "to_csv", killed)
    with pytest.raises(KeyboardInterrupt):
        write_prepared(out, *_tables(3))
    monkeypatch.undo()
    audio, captions = read_tables(out)
    assert len(audio) == 2 and captions["text"].str.startswith("caption 2 ").all()  # the old set, whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["prepared"]
    write_prepared(out, *_tables(3))
    audio, captions = read_tables(out)
    assert len(audio) == 3 and captions["text"].str.startswith("caption 3 ").all()


def test_prepare_refuses_to_replace_a_folder_holding_other_files(tmp_path):
    from salsa2.utils.errors import UserError
    from salsa2.data.tables import write_prepared

    (tmp_path / "sounds").mkdir()
    (tmp_path / "sounds" / "dog.wav").write_bytes(b"RIFF")
    with pytest.raises(UserError, match=r"sounds: holds 'dog.wav', which is no prepared table; give a new"):
        write_prepared(tmp_path / "sounds", *_tables(1))
    assert (tmp_path / "sounds" / "dog.wav").read_bytes() == b"RIFF"


# ------------------------------------------------------------------------- item 9: a full disk under resume state
@pytest.fixture(params=["tmpfs", "injected"])
def full_resume_dir(request, tmp_path, monkeypatch):
    """A resume folder on a full disk: a 64 KB tmpfs where the test may mount one, else a fault-injected writer
    that fails the way torch.save does on a full disk (a few bytes written, then RuntimeError)."""
    root = tmp_path / "resume"
    root.mkdir()
    if request.param == "tmpfs":
        if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(root)],
                          capture_output=True).returncode != 0:
            pytest.skip("cannot mount a tmpfs here; the injected writer covers this case")
        request.addfinalizer(lambda: subprocess.run(["umount", "-l", str(root)], check=False))
    else:
        import torch

        real_save = torch.save

        def full_disk(obj, f, *args, **kwargs):
            if str(f).startswith(str(root)):
                Path(f).write_bytes(b"\0" * 64)
                raise RuntimeError("[enforce fail at inline_container.cc:603] . unexpected pos 64 vs 0")
            return real_save(obj, f, *args, **kwargs)

        monkeypatch.setattr(torch, "save", full_disk)
    return root


def test_full_disk_under_resume_folder_does_not_stop_training(full_resume_dir, caplog):
    import logging

    import torch
    from helpers.tiny import tiny_data, tiny_model

    from salsa2.config.params import TrainParams
    from salsa2.training.losses import LOSSES
    from salsa2.training.resume import ResumeState
    from salsa2.training.loop import fit

    torch.manual_seed(0)
    train, store = tiny_data(20, seed=0)
    val, _ = tiny_data(8, seed=0)
    cfg = TrainParams(epochs=2, batch_size=6, lr=3e-3, warmup_epochs=0.5, max_seconds=1.0, device="cpu")
    model = tiny_model()
    ckpt = ResumeState("tiny", "key0", full_resume_dir)
    with caplog.at_level(logging.WARNING, logger="salsa2.training.resume"):
        result = fit(model, LOSSES.build("nt_xent"), train, val, cfg, audio_lr=1e-3, text_lr=0.0,
                     text_features=store, seed=0, checkpointer=ckpt)
    assert len(result.history) == 2  # every epoch trained
    warnings = [r.getMessage() for r in caplog.records if "resume state" in r.getMessage()]
    assert len(warnings) == 1 and "training continues without it" in warnings[0]
    # no half-written state left to resume from (the empty lock file only marks a live run)
    assert not [p for p in ckpt.dir.rglob("*") if p.is_file() and p.name != "lock"]
    assert all(torch.isfinite(v).all() for v in model.state_dict().values() if v.is_floating_point())


def test_unreadable_resume_state_starts_fresh(tmp_path, caplog):
    from salsa2.training.resume import ResumeState

    ckpt = ResumeState("tiny", "key0", tmp_path)
    ckpt.dir.mkdir(parents=True)
    ckpt.path.write_bytes(b"PK\x03\x04" + b"\0" * 60)  # what a full disk left behind under older versions
    assert ckpt.load() is None
    assert not ckpt.path.exists()


# ----------------------------------------------------------------- item 10: hand-copied weights must load first
def test_bad_hand_copied_weights_are_not_trusted_and_the_advice_works(tmp_path, monkeypatch):
    import torch

    from salsa2.model import pretrained

    monkeypatch.setenv("SALSA2_WEIGHTS", str(tmp_path))
    monkeypatch.setenv("SALSA2_OFFLINE", "1")
    target = tmp_path / pretrained.PUBLISHED_WEIGHTS["mn40_as_ext"].filename
    record = target.with_name(target.name + ".sha256")
    target.write_text("<!DOCTYPE html><html>Sign in to continue</html>")  # what a browser "download" saved
    with pytest.raises(pretrained.WeightsUnavailable) as err:
        pretrained.fetch_weights("mn40_as_ext")
    msg = str(err.value)
    assert "\n" not in msg and str(target) in msg and "is not a PyTorch checkpoint (UnpicklingError" in msg
    assert f"copy it to {target}" in msg  # the advice
    assert not record.exists()  # nothing recorded for a file that does not load
    torch.save({"w": torch.arange(3.0)}, target)  # the user follows the advice: the right file, copied in
    assert pretrained.fetch_weights("mn40_as_ext") == target
    assert record.read_text().split() == [pretrained.sha256_of(target), target.name, pretrained.LOADED]


def test_unverified_record_of_older_versions_is_rechecked(tmp_path, monkeypatch, caplog):
    import torch

    from salsa2.model import pretrained

    monkeypatch.setenv("SALSA2_WEIGHTS", str(tmp_path))
    target = tmp_path / pretrained.PUBLISHED_WEIGHTS["mn40_as_ext"].filename
    record = target.with_name(target.name + ".sha256")
    record.write_text(f"{'ab' * 32}  {target.name}\n")  # recorded for a bad file before the load check existed
    torch.save({"w": torch.ones(2)}, target)
    assert pretrained.fetch_weights("mn40_as_ext") == target
    assert record.read_text().split()[0] == pretrained.sha256_of(target)
    torch.save({"w": torch.zeros(2)}, target)  # a verified record is kept: a changed file is refused
    with pytest.raises(pretrained.WeightsUnavailable, match="was recorded for it .* when it first loaded"):
        pretrained.fetch_weights("mn40_as_ext")


def test_weights_path_that_is_no_checkpoint_is_one_line(tmp_path):
    from salsa2.model import pretrained

    bad = tmp_path / "model.pt"
    bad.write_bytes(b"\x00\x01garbage")
    with pytest.raises(pretrained.WeightsUnavailable,
                       match=r"model\.pt is not a PyTorch checkpoint .*; give the checkpoint"):
        pretrained.load_state_dict(pretrained.resolve(str(bad), "mn40_as_ext"))


# ----------------------------------------------------------------- item 5: a corrupt index does not block re-indexing
@pytest.fixture(scope="module")
def search_model(search_demo):
    return search_demo


@pytest.mark.parametrize("damage", [b"PAR1 truncated by a full disk", b""])
def test_corrupt_index_is_rebuilt_with_full(search_model, tmp_path, damage):
    from salsa2.search.index import IndexFileError, build_index, read_index

    lib = tmp_path / "lib"
    lib.mkdir()
    for f in sorted(search_model.audio_dir.rglob("*.flac"))[:2]:
        shutil.copy2(f, lib / f.name)
    out = tmp_path / "idx.parquet"
    out.write_bytes(damage)
    with pytest.raises(IndexFileError, match=r"idx\.parquet: the existing index cannot be read .*--full`$"):
        build_index(lib, out, progress=False)  # no models given: nothing to rebuild with
    build_index(lib, out, [search_model.model], full=True, progress=False)
    assert sorted(read_index(out).files["path"]) == sorted(p.name for p in lib.iterdir())
    out.write_bytes(damage)
    build_index(lib, out, [search_model.model], progress=False)  # also without --full when the models are given
    assert len(read_index(out).files) == 2
