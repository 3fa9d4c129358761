"""A training run killed (SIGKILL) after an epoch's checkpoint continues from it and ends as if never killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from helpers import REPO, TESTS
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

    from salsa2.training import stages as two_stage
    from salsa2.features.splits import load_split
    from salsa2.training.resume import code_digest

    package = tmp_path / "pkg"
    shutil.copytree(REPO / "src" / "salsa2", package, ignore=shutil.ignore_patterns("__pycache__"))
    before = code_digest(package)
    (package / "training" / "loop.py").write_text((package / "training" / "loop.py").read_text() + "\n# edited\n")
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
