"""The README's paper commands (``salsa2 exp <preset>``): the preset's words reach DVC unchanged, the paper
preset's keys all go through DVC on a shrunken copy of the project, and the preview runs as printed.

The slow test runs ``salsa2 exp params-paper.yaml`` (the paper's networks on the demo data) in a fresh git + DVC
project whose params-paper.yaml is the real preset with a tiny override (random weights, PaSST alone, frozen MiniLM
instead of roberta-large, one batch of 10 s crops per stage, fp32 on CPU, 4 + 3 + 3 demo clips), so every key and
value type of the preset goes through the same DVC parsing as on a GPU machine. The recipes with their data run in
test_reproduce_recipes.py.
"""

import json
import os
import re
import shutil
from pathlib import Path

import pytest
import yaml

from helpers import REPO
from helpers.dvc_project import demo_params, make_project, run
from salsa2.config import presets

_STAGE = {"epochs": 1, "batch_size": 4, "layout": "clips", "max_seconds": 10.0, "precision": "fp32"}
TINY = {
    "encoders": {"passt": "kaldi128"},  # one of the three encoders: the preset's keys all go through DVC still
    "audio_encoders": {name: {"batch_size": 4, "kwargs": {"weights": "none"}} for name in ("passt", "atst", "mn")},
    "text": {"model": "minilm", "trainable_layers": 0},
    "stage1": _STAGE,
    "stage2": _STAGE,
}


def readme_paper_commands() -> list[str]:
    """The lines of README.md's fenced bash blocks that run ``salsa2 exp``, without their comments."""
    text = (REPO / "README.md").read_text()
    blocks = re.findall(r"```(?:bash|sh)\n(.*?)```", text, flags=re.S)
    lines = [line.split("#")[0].strip() for b in blocks for line in b.splitlines() if "salsa2 exp" in line]
    assert lines, "README.md: expected bash lines running salsa2 exp"
    return lines


def test_readme_commands_are_documented_recipes():
    documented = re.findall(r"`(salsa2 exp [a-z][^`]*)`", (REPO / "docs/reproduce.md").read_text())
    for line in readme_paper_commands():
        assert line.removesuffix(" --dry") in documented, line


def _ok(cmd: list[str], cwd: Path) -> str:
    return run(cmd, cwd, env={"PYTHONPATH": str(REPO / "src")})


@pytest.mark.slow
def test_paper_preset_runs_the_pipeline(tmp_path):
    preset = yaml.safe_load((REPO / "params-paper.yaml").read_text())
    root = make_project(tmp_path / "project", demo_params(n_train=4, n_val=3, n_test=3),
                        {"params-paper.yaml": yaml.safe_dump(presets.apply(TINY, preset), sort_keys=False)})

    _ok(["bash", "-c", "salsa2 exp params-paper.yaml"], root)

    ran = yaml.safe_load((root / "params.yaml").read_text())
    assert ran["encoders"] == {"passt": "kaldi128"} and ran["embed_dim"] == 1024 and "mn" in ran["audio_encoders"]
    assert set(ran["frontends"]) == {"kaldi128", "mel64_atst"}  # the preset's caches replace the demo's
    assert ran["text"]["normalize"] == "authors" and ran["stage1"]["cosine_epochs"] == 15.0
    assert ran["audio_encoders"]["passt"]["kwargs"]["patchout_t"] == 15
    metrics = json.loads((root / "reports/metrics.json").read_text())
    assert {"stage1-passt", "stage2-passt"} <= set(metrics)
    assert 0 <= metrics["stage2-passt"]["t2a"]["mAP@10"] <= 1


def test_readme_commands_hand_dvc_the_presets_words(tmp_path):
    """Each README line with a ``dvc`` on PATH that prints its arguments: DVC gets ``exp run`` and the preset's
    ``-S`` words, one word each and without shell quotes (no ``eval`` of a script's output);
    the ``--dry`` line prints the preview and calls no DVC."""
    shim = tmp_path / "bin" / "dvc"
    shim.parent.mkdir()
    shim.write_text("#!/bin/sh\nprintf 'DVC<%s>\\n' \"$@\"\n")
    shim.chmod(0o755)
    work = tmp_path / "work"
    work.mkdir()
    for name in ("params.yaml", "params-paper.yaml", "dvc.yaml"):
        shutil.copy(REPO / name, work / name)
    shutil.copytree(REPO / "presets", work / "presets")
    base = yaml.safe_load((REPO / "params.yaml").read_text())
    env = {"PYTHONPATH": str(REPO / "src"), "PATH": f"{shim.parent}:{os.environ['PATH']}"}
    for line in readme_paper_commands():
        out = _ok(["bash", "-c", line], work) if "--dry" in line else run(["bash", "-c", line], work, env=env)
        words = re.findall(r"DVC<(.*)>", out)
        if "--dry" in line:
            assert not words and "runs  evaluate" in out and "GPU time" in out
        else:
            preset = presets.load(work / "presets" / f"{line.split()[2]}.yaml")
            assert words == ["exp", "run", *presets.override_args(preset, base)]
