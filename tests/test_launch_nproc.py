"""``stage1.nproc: 2`` makes ``dvc repro`` train through torchrun (2 gloo processes on CPU) and write the same model
as ``nproc: 1`` (a shrunken demo; the BatchNorm-free, dropout-free transformer, see docs/scale.md)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from conftest import REPO

pytestmark = pytest.mark.slow


def _run(cmd: list[str], cwd: Path) -> str:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "DVC_NO_ANALYTICS": "1", "OMP_NUM_THREADS": "1", "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout + proc.stderr


def _set_nproc(root: Path, n: int) -> None:
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["stage1"]["nproc"] = n
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def test_dvc_repro_with_two_processes_gives_the_one_process_model(tmp_path):
    root = tmp_path / "project"
    root.mkdir()
    for name in ("dvc.yaml", "pyproject.toml"):
        shutil.copy(REPO / name, root / name)
    for name in ("stages", "src"):
        shutil.copytree(REPO / name, root / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["encoders"] = ["transformer"]
    params["audio_encoders"]["transformer"]["kwargs"]["dropout"] = 0.0
    params["demo"].update(n_train=40, n_val=12, n_test=12, workers=1)
    params["stage1"].update(epochs=2, batch_size=16, resume=False)  # 40 clips: batches 16, 16, 8
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    _run(["git", "init", "-q", "-b", "main"], root)
    _run(["dvc", "init", "-q"], root)
    _run(["git", "add", "-A"], root)
    _run(["git", "commit", "-qm", "init"], root)  # dvclive needs a commit

    _run(["dvc", "repro", "stage1@transformer"], root)
    single = load_file(root / "models/stage1/transformer/model.safetensors")
    _set_nproc(root, 2)
    out = _run(["dvc", "repro", "stage1@transformer"], root)
    assert "torch.distributed.run --standalone --nproc-per-node=2" in out
    assert "Running stage 'stage1@transformer'" in out and "Running stage 'demo'" not in out
    double = load_file(root / "models/stage1/transformer/model.safetensors")
    assert single.keys() == double.keys()
    for key, value in single.items():
        if key.endswith("in_proj_bias"):  # the key bias: exactly-zero gradient, Adam amplifies float noise
            third = len(value) // 3
            keep = torch.cat([torch.arange(third), torch.arange(2 * third, 3 * third)])
            value, other = value[keep], double[key][keep]
        else:
            other = double[key]
        torch.testing.assert_close(other, value, atol=2e-5, rtol=1e-4, msg=key)
    assert (root / "reports/train/stage1-transformer/metrics.json").exists()
