"""The repository's DVC cache type stores each output once: after `dvc repro` every file of a file or folder output
is a hard link to its cache entry (link count 2), not a second copy (docs/dvc.md)."""

from __future__ import annotations

import configparser
import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import REPO

pytestmark = pytest.mark.slow

DVC_YAML = """stages:
  write:
    cmd: python write.py
    deps: [write.py]
    outs: [folder, one.bin]
"""
WRITE = """import os
os.makedirs("folder", exist_ok=True)
for name in ("folder/0.bin", "folder/1.bin", "folder/2.bin", "one.bin"):
    with open(name, "wb") as f:
        f.write(os.urandom(4096))
"""


def _cache_type() -> str:
    config = configparser.ConfigParser()
    config.read(REPO / ".dvc" / "config")
    return config["cache"]["type"].strip('"')


def test_outputs_are_links_to_the_cache_after_repro(tmp_path: Path) -> None:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "DVC_NO_ANALYTICS": "1", "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t"}
    (tmp_path / "dvc.yaml").write_text(DVC_YAML)
    (tmp_path / "write.py").write_text(WRITE)
    for cmd in (["git", "init", "-q"], ["dvc", "init", "-q"], ["dvc", "config", "core.analytics", "false"],
                ["dvc", "config", "cache.type", _cache_type()], ["git", "add", "-A"], ["git", "commit", "-qm", "i"],
                ["dvc", "repro", "-q"]):
        subprocess.run(cmd, cwd=tmp_path, env=env, check=True, capture_output=True)
    outputs = sorted((tmp_path / "folder").iterdir()) + [tmp_path / "one.bin"]
    links = {p.name: p.stat().st_nlink for p in outputs}
    assert links == {p.name: 2 for p in outputs}, f"cache.type {_cache_type()}: link counts {links}"
