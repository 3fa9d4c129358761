"""Resumable training: a checkpoint of the whole training state after every epoch, outside DVC's outputs.

``dvc repro`` deletes a stage's declared outputs before it runs, so the resume state lives in a scratch
directory that no stage declares (``SALSA2_RESUME_DIR``, default ``~/.cache/salsa2/resume``). It is keyed by
a hash of everything that defines the run (the params, the stage and encoder names, the training data's size,
the contents of its input files and of the salsa2 package's source, so a state saved by other code is never
continued), never by where the run writes: a ``dvc exp run --temp`` or queued run
of the same configuration resumes the state a killed workspace run left, and vice versa. A running process
holds an exclusive ``flock`` on its state's ``lock`` file; state of another key of the same stage and encoder
whose lock nobody holds (its run was killed, then the params changed) is deleted, state of a live concurrent
run is kept. A run that finishes deletes its state.

State per epoch: model, loss and optimizer weights, the GradScaler, numpy's and torch's RNG states, the
next epoch, the best epoch so far with its weights, and the history (replayed to the logger on resume so
the curves stay whole).
"""

from __future__ import annotations

import hashlib
import fcntl
import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

import torch

import salsa2
from salsa2.utils.digest import tree_digest
from salsa2.utils.fsutil import atomic_path

log = logging.getLogger(__name__)
STATE_FILE = "last.pt"


def resume_root() -> Path:
    return Path(os.environ.get("SALSA2_RESUME_DIR") or Path.home() / ".cache" / "salsa2" / "resume")


def config_key(*parts: Any) -> str:
    """A short stable hash of JSON-able ``parts`` (dataclasses should be passed as ``asdict``)."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def code_digest(package: str | Path | None = None) -> str:
    """sha256 of the ``*.py`` sources under ``package`` (default: the whole salsa2 package), by relative path and
    contents."""
    return tree_digest(package if package is not None else Path(salsa2.__file__).resolve().parent, "*.py")


class ResumeState:
    """The resume state of one training run: ``<root>/<name>/<key>/last.pt``."""

    def __init__(self, name: str, key: str, root: str | Path | None = None) -> None:
        self.name, self.key = name, key
        self.parent = Path(root) if root is not None else resume_root()
        self.parent = self.parent / name
        self.dir = self.parent / key
        self.disabled = False
        self._lock: int | None = None

    @property
    def path(self) -> Path:
        return self.dir / STATE_FILE

    @staticmethod
    def _try_lock(directory: Path) -> int | None:
        """An fd holding ``directory/lock`` exclusively, or None when another process holds it."""
        directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(directory / "lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        return fd

    def release(self) -> None:
        """Give up the lock (a process's exit does the same)."""
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None

    def load(self) -> dict | None:
        """The saved state of this key, or None. Takes this key's lock; deletes state of other keys that no live
        process holds (stale: its run died and the params changed since). Under torchrun only rank 0 locks and
        cleans up; the other ranks read the same state."""
        if int(os.environ.get("RANK", "0")) != 0:
            return self._read()
        if self.parent.is_dir():
            for other in self.parent.iterdir():
                if other.name == self.key or not other.is_dir():
                    continue
                fd = self._try_lock(other)
                if fd is None:
                    log.info("keeping resume state %s: a running process holds it", other)
                    continue
                log.info("discarding resume state %s (params changed)", other)
                shutil.rmtree(other, ignore_errors=True)
                os.close(fd)
        if self._lock is None:
            self._lock = self._try_lock(self.dir)
            if self._lock is None:
                raise RuntimeError(f"{self.dir}: another process is running the same configuration; wait for it "
                                   "or set SALSA2_RESUME_DIR to a folder of its own")
        return self._read()

    def _read(self) -> dict | None:
        if not self.path.exists():
            return None
        try:
            state = torch.load(self.path, map_location="cpu", weights_only=False)
        except Exception as err:  # noqa: BLE001 - torch raises several types for a damaged file
            log.warning("cannot read resume state %s (%s); starting fresh", self.path, err)
            self.path.unlink(missing_ok=True)
            return None
        if not isinstance(state, dict) or state.get("key") != self.key:
            log.warning("%s holds state of another run; starting fresh", self.path)
            return None
        log.info("resuming %s from epoch %d (%s)", self.name, state["epoch"], self.path)
        return state

    def save(self, state: dict) -> None:
        """Write ``state`` atomically (a kill mid-write leaves the previous epoch's state intact).

        Resume state is optional: when it cannot be written (full disk, no permission) training goes on without
        it; one warning is logged and later saves are skipped."""
        if self.disabled:
            return
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            with atomic_path(self.path) as tmp:
                torch.save({**state, "key": self.key}, tmp)
        except (OSError, RuntimeError) as err:  # torch reports a full disk as RuntimeError ("unexpected pos")
            self.disabled = True
            log.warning("cannot write resume state under %s (%s); training continues without it (a killed run will "
                        "start again from epoch 0): free space there or set SALSA2_RESUME_DIR", self.dir,
                        str(err).splitlines()[0] if str(err) else type(err).__name__)

    def clear(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)
        self.release()
        if self.parent.is_dir() and not any(self.parent.iterdir()):
            self.parent.rmdir()
