"""Resuming training (salsa2.training.resume): a run killed (SIGKILL) or interrupted after an epoch's checkpoint
continues from it and ends as if never stopped; state of other params, of a live run or of other code is not
continued; a full disk or an unreadable state never stops training."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from helpers import REPO, TESTS
from helpers.tiny import tiny_data, tiny_model
from salsa2.config.params import TrainParams
from salsa2.training.loop import fit
from salsa2.training.losses import LOSSES
from salsa2.training.resume import ResumeState, config_key

HERE = Path(__file__).resolve().parent  # resume_run.py, the training run
EPOCHS = 4


def _start(root: Path, out: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(TESTS)]),
           "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, str(HERE / "resume_run.py"), str(root), str(out)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _lines(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


def test_killed_run_resumes_from_its_last_checkpoint(tmp_path):
    state = tmp_path / "resume" / "tiny" / "key0" / "last.pt"
    victim = _start(tmp_path / "resume", tmp_path / "killed")
    reference = _start(tmp_path / "resume-ref", tmp_path / "reference")  # the same run, never interrupted
    deadline = time.time() + 90
    while not state.exists():
        assert victim.poll() is None, victim.stderr.read()
        assert time.time() < deadline, "no checkpoint appeared"
        time.sleep(0.02)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    saved_epoch = torch.load(state, weights_only=False)["epoch"]
    assert 1 <= saved_epoch < EPOCHS, "the kill should land mid-run"
    assert not (tmp_path / "killed" / "model.pt").exists()
    trained_before = len(_lines(tmp_path / "killed" / "trained.log"))

    rerun = _start(tmp_path / "resume", tmp_path / "killed")
    _, err = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, err
    assert f"from epoch {saved_epoch}" in err  # the log line of salsa2.training.resume
    trained_after = len(_lines(tmp_path / "killed" / "trained.log")) - trained_before
    assert trained_after == EPOCHS - saved_epoch  # only the missing epochs were trained
    logged = [int(e) for e in _lines(tmp_path / "killed" / "logged.log")]
    assert logged[-EPOCHS:] == list(range(EPOCHS))  # the re-run replays the saved epochs to the logger
    assert not state.parent.exists()  # deleted on success

    _, err = reference.communicate(timeout=120)
    assert reference.returncode == 0, err
    resumed = torch.load(tmp_path / "killed" / "model.pt")
    straight = torch.load(tmp_path / "reference" / "model.pt")
    for key, value in straight.items():
        assert torch.equal(resumed[key], value), key  # bit-identical: weights, optimizer and RNGs restored


def test_state_of_other_params_is_discarded(tmp_path):
    old = ResumeState("stage1-cnn", config_key({"lr": 1}), tmp_path)
    old.save({"epoch": 3})
    assert old.load()["epoch"] == 3
    old.release()  # its process died
    new = ResumeState("stage1-cnn", config_key({"lr": 2}), tmp_path)
    assert new.load() is None
    assert not old.dir.exists()  # stale state removed
    new.save({"epoch": 1})
    new.clear()
    assert not (tmp_path / "stage1-cnn").exists()


def test_state_of_a_live_run_is_kept_and_keys_ignore_the_output_path(tmp_path):
    """A concurrent run (another key, lock held) keeps its state; the same key is refused while held."""
    live = ResumeState("stage1-cnn", config_key({"lr": 1}), tmp_path)
    live.load()
    live.save({"epoch": 2})
    other = ResumeState("stage1-cnn", config_key({"lr": 2}), tmp_path)
    assert other.load() is None
    assert live.path.exists()  # not deleted: its process holds the lock
    twin = ResumeState("stage1-cnn", config_key({"lr": 1}), tmp_path)
    with pytest.raises(RuntimeError, match="another process"):
        twin.load()
    live.release()
    assert twin.load()["epoch"] == 2  # a copy of the same run (e.g. dvc exp run --temp) resumes it
    twin.clear()
    other.clear()


def test_state_saved_by_other_code_is_not_continued(tmp_path, monkeypatch, tiny_demo, tiny_params):
    """The key holds the package's source digest: a run killed, then re-run after a code edit, starts afresh
    (its state is another key's, unlocked, hence deleted) instead of mixing two versions' epochs."""
    import shutil

    from salsa2.training import two_stage
    from salsa2.features.splits import load_split
    from salsa2.training.resume import code_digest

    package = tmp_path / "pkg"
    shutil.copytree(REPO / "src" / "salsa2", package, ignore=shutil.ignore_patterns("__pycache__"))
    before = code_digest(package)
    edited_file = package / "model" / "dual_encoder.py"  # outside training/: the whole package counts
    edited_file.write_text(edited_file.read_text() + "\n# edited\n")
    assert code_digest(package) != before

    monkeypatch.setenv("SALSA2_RESUME_DIR", str(tmp_path / "resume"))
    train = load_split(tiny_demo.data, "train", normalize_text=tiny_params.text.normalize)
    monkeypatch.setattr(two_stage, "code_digest", lambda: before)
    killed = two_stage._checkpointer(tiny_params, "stage1", "cnn", train)
    killed.load()
    killed.save({"epoch": 2})
    killed.release()
    monkeypatch.setattr(two_stage, "code_digest", lambda: code_digest(package))
    edited = two_stage._checkpointer(tiny_params, "stage1", "cnn", train)
    assert edited.key != killed.key
    assert edited.load() is None and not killed.path.exists()
    edited.clear()


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
        real_save = torch.save

        def full_disk(obj, f, *args, **kwargs):
            if str(f).startswith(str(root)):
                Path(f).write_bytes(b"\0" * 64)
                raise RuntimeError("[enforce fail at inline_container.cc:603] . unexpected pos 64 vs 0")
            return real_save(obj, f, *args, **kwargs)

        monkeypatch.setattr(torch, "save", full_disk)
    return root


def test_full_disk_under_resume_folder_does_not_stop_training(full_resume_dir, caplog):
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
    ckpt = ResumeState("tiny", "key0", tmp_path)
    ckpt.dir.mkdir(parents=True)
    ckpt.path.write_bytes(b"PK\x03\x04" + b"\0" * 60)  # what a full disk left behind under older versions
    assert ckpt.load() is None
    assert not ckpt.path.exists()


def test_interrupted_fit_resumes_bit_identically_with_validation_every_2(tmp_path):
    """In-process twin of test_killed_run_resumes_from_its_last_checkpoint: stop after epoch 1's checkpoint,
    re-run."""
    train, store = tiny_data(20, seed=0)
    val, _ = tiny_data(8, seed=0)
    cfg = TrainParams(epochs=4, batch_size=6, lr=3e-3, warmup_epochs=0.5, max_seconds=1.0, device="cpu",
                      validate_every=2)

    def run(root, stop_at=None):
        def on_epoch(epoch, record):
            if epoch == stop_at:
                raise KeyboardInterrupt
        model = tiny_model(dropout=0.1)
        result = fit(model, LOSSES.build("nt_xent", tau=0.05), train, val, cfg, audio_lr=1e-3, text_lr=0.0,
                     text_features=store, on_epoch=on_epoch, checkpointer=ResumeState("tiny", "key0", root))
        return model, result

    straight, want = run(tmp_path / "a")
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "b", stop_at=1)
    resumed, got = run(tmp_path / "b")
    assert got.best_epoch == want.best_epoch and got.best_val == want.best_val
    for key, value in straight.state_dict().items():
        assert torch.equal(resumed.state_dict()[key], value), key


def test_code_digest_covers_the_whole_package():
    import salsa2
    from salsa2.training.resume import code_digest

    package = Path(salsa2.__file__).resolve().parent
    assert code_digest() == code_digest(package) != code_digest(package / "training")
