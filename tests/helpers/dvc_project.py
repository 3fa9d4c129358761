"""A shrunken copy of the project in a fresh git + DVC repository, for the tests that run ``dvc`` end to end
(the pipeline, the README's paper command, multi-process training)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from . import REPO

_GIT_USER = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}


def run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    """Run ``cmd`` with this interpreter's tools first on PATH, offline, analytics off; fail with its output."""
    full = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
            "DVC_NO_ANALYTICS": "1", "HF_HUB_OFFLINE": "1", **_GIT_USER, **(env or {})}
    proc = subprocess.run(cmd, cwd=cwd, env=full, capture_output=True, text=True)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout + proc.stderr


def make_project(root: Path, params: dict, files: dict[str, str] | None = None) -> Path:
    """The pipeline (dvc.yaml, stages/, src/, the downloads' and released models' folders) with ``params`` as
    params.yaml and ``files`` (relative path -> text) beside it, committed in a new git + DVC repository at
    ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    for name in ("dvc.yaml", "pyproject.toml", ".dvcignore"):
        shutil.copy(REPO / name, root / name)
    for name in ("stages", "src"):
        shutil.copytree(REPO / name, root / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    # the downloads', judgements' and released models' folders (none here)
    for folder in ("data/raw", "data/relevance", "models/released"):
        (root / folder).mkdir(parents=True)
        shutil.copy(REPO / folder / "README.md", root / folder / "README.md")
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    for rel, text in (files or {}).items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    for cmd in (["git", "init", "-q", "-b", "main"], ["dvc", "init", "-q"],
                ["dvc", "config", "core.analytics", "false"],
                ["git", "add", "-A"], ["git", "commit", "-qm", "init"]):  # dvclive and dvc exp need a commit
        run(cmd, root)
    return root


def demo_params(**demo: int) -> dict:
    """The repository's params.yaml with the demo shrunk to ``demo`` (n_train, n_val, n_test) and one worker, and the
    long-recording demo to one recording of its test clips."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["demo"].update(workers=1, **demo)
    clips = min(3, params["demo"]["n_test"])  # the long-recording demo places test clips: as many as there are
    params["moments"]["demo"].update(recordings=1, min_seconds=30, max_seconds=60, min_clips=1, max_clips=clips)
    return params
