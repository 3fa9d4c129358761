"""Resumable training: a checkpoint of the whole training state after every epoch, outside DVC's outputs.

``dvc repro`` deletes a stage's declared outputs before it runs, so the resume state lives in a scratch
directory that no stage declares (``SALSA2_RESUME_DIR``, default ``~/.cache/salsa2/resume``; see
/work/shared/DVC.md sec. 1). It is keyed by a hash of everything that defines the run (the stage's
params, the stage and encoder names, the training data's size and the checkout's absolute path): a run
whose key differs starts fresh and removes the stale state; a run that finishes deletes its state.

State per epoch: model, loss and optimizer weights, the GradScaler, numpy's and torch's RNG states, the
next epoch, the best epoch so far with its weights, and the history (replayed to the logger on resume so
the curves stay whole).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

import torch

from salsa2.fsutil import atomic_path

log = logging.getLogger(__name__)
STATE_FILE = "last.pt"


def resume_root() -> Path:
    return Path(os.environ.get("SALSA2_RESUME_DIR") or Path.home() / ".cache" / "salsa2" / "resume")


def config_key(*parts: Any) -> str:
    """A short stable hash of JSON-able ``parts`` (dataclasses should be passed as ``asdict``)."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class Checkpointer:
    """The resume state of one training run: ``<root>/<name>/<key>/last.pt``."""

    def __init__(self, name: str, key: str, root: str | Path | None = None) -> None:
        self.name, self.key = name, key
        self.parent = Path(root) if root is not None else resume_root()
        self.parent = self.parent / name
        self.dir = self.parent / key
        self.disabled = False

    @property
    def path(self) -> Path:
        return self.dir / STATE_FILE

    def load(self) -> dict | None:
        """The saved state of this key, or None; state saved under other keys is deleted (params changed), and an
        unreadable state (a disk that filled up mid-write under an older version) is discarded with a warning."""
        if self.parent.is_dir():
            for stale in self.parent.iterdir():
                if stale.name != self.key:
                    log.info("discarding resume state %s (params changed)", stale)
                    shutil.rmtree(stale, ignore_errors=True)
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
        if self.parent.is_dir() and not any(self.parent.iterdir()):
            self.parent.rmdir()
