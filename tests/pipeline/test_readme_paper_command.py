"""The README's paper command, run exactly as printed, on a shrunken copy of the project.

The command is read out of README.md (the one ``bash`` line that calls ``salsa2.config.presets``) and run by bash in a
fresh git + DVC project. The project's params-paper.yaml is the real preset with a tiny override (random
weights, PaSST alone, frozen MiniLM instead of roberta-large, one batch of 10 s crops per stage, fp32 on
CPU, 4 + 3 + 3 demo clips), so every key and value type of the preset goes through the same shell and DVC
parsing as on a GPU machine (the real preset's words are checked by the fast test below).
"""

import json
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


def readme_paper_command() -> str:
    """The single line of a fenced bash block in README.md that applies params-paper.yaml."""
    text = (REPO / "README.md").read_text()
    blocks = re.findall(r"```(?:bash|sh)\n(.*?)```", text, flags=re.S)
    lines = [line.strip() for b in blocks for line in b.splitlines() if "salsa2.config.presets" in line]
    assert len(lines) == 1, f"README.md: expected one bash line running salsa2.config.presets, found {lines}"
    return lines[0]


def test_readme_command_names_the_preset_and_runs_dvc():
    line = readme_paper_command()
    assert "params-paper.yaml" in line and "dvc exp run" in line


def _ok(cmd: list[str], cwd: Path) -> str:
    return run(cmd, cwd, env={"PYTHONPATH": str(REPO / "src")})


@pytest.mark.slow
def test_readme_paper_command_runs_the_pipeline(tmp_path):
    preset = yaml.safe_load((REPO / "params-paper.yaml").read_text())
    root = make_project(tmp_path / "project", demo_params(n_train=4, n_val=3, n_test=3),
                        {"params-paper.yaml": yaml.safe_dump(presets.apply(TINY, preset), sort_keys=False)})

    _ok(["bash", "-c", readme_paper_command()], root)

    ran = yaml.safe_load((root / "params.yaml").read_text())
    assert ran["encoders"] == {"passt": "kaldi128"} and ran["embed_dim"] == 1024 and "mn" in ran["audio_encoders"]
    assert set(ran["frontends"]) == {"kaldi128", "mel64_atst"}  # the preset's caches replace the demo's
    assert ran["text"]["normalize"] == "authors" and ran["stage1"]["cosine_epochs"] == 15.0
    assert ran["audio_encoders"]["passt"]["kwargs"]["patchout_t"] == 15
    metrics = json.loads((root / "reports/metrics.json").read_text())
    assert {"stage1-passt", "stage2-passt"} <= set(metrics)
    assert 0 <= metrics["stage2-passt"]["t2a"]["mAP@10"] <= 1


def test_readme_command_hands_dvc_unquoted_words(tmp_path):
    """The README line with ``dvc exp run`` replaced by printf: each -S value arrives as one word without the
    shell quotes (the bare ``$(...)`` form passed them on literally: DVC's LexerNoViableAltException)."""
    line = readme_paper_command()
    assert "dvc exp run" in line
    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    shutil.copy(REPO / "params-paper.yaml", tmp_path / "params-paper.yaml")
    words = _ok(["bash", "-c", line.replace("dvc exp run", "printf '%s\\n'")], tmp_path).splitlines()
    base = yaml.safe_load((REPO / "params.yaml").read_text())
    preset = yaml.safe_load((REPO / "params-paper.yaml").read_text())
    assert words == presets.override_args(preset, base)
    cmd = "printf '%s\\n' $(python -m salsa2.config.presets params-paper.yaml)"
    bare = _ok(["bash", "-c", cmd], tmp_path).splitlines()
    assert any(w.startswith("'") for w in bare)  # the bare form keeps the quotes
