"""``stage1.nproc: 2`` makes ``dvc repro`` train through torchrun (2 gloo processes on CPU) and write the same model
as ``nproc: 1`` (a shrunken demo; the BatchNorm-free, dropout-free transformer, see docs/scale.md)."""

from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from helpers.dvc_project import demo_params, make_project, run

pytestmark = pytest.mark.slow


def _run(cmd: list[str], cwd: Path) -> str:
    return run(cmd, cwd, env={"OMP_NUM_THREADS": "1"})


def _set_nproc(root: Path, n: int) -> None:
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["stage1"]["nproc"] = n
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def test_dvc_repro_with_two_processes_gives_the_one_process_model(tmp_path):
    params = demo_params(n_train=40, n_val=12, n_test=12)
    params["encoders"] = {"transformer": "mel64"}
    params["audio_encoders"]["transformer"]["kwargs"]["dropout"] = 0.0
    params["stage1"].update(epochs=2, batch_size=16, resume=False)  # 40 clips: batches 16, 16, 8
    root = make_project(tmp_path / "project", params)

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
