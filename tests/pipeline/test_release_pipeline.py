"""A released model through the whole pipeline of a tiny DVC project: stage release@salsa imports it from a
loopback HTTP server (three parts), stage ensemble uses it as one of the teachers (``released-salsa`` in
stage2.teachers), stage evaluate reports it as ``released-salsa`` (with the judgements' mAP@16), and `salsa2 info
salsa` shows where it came from. (`salsa2 evaluate salsa`, which needs no training, and the stage's figures against
a direct computation: tests/evaluation/test_evaluate_released.py.)"""

from __future__ import annotations

import json
import sys

import pytest

from helpers import TESTS
from helpers.dvc_project import demo_params, make_project, run
from helpers.file_server import FileServer
from helpers.released_model import TINY_TEXT, split_file
from salsa2.utils.digest import file_digest
from salsa2.utils.npz import open_npz

pytest.importorskip("transformers")
pytestmark = pytest.mark.slow

NAMES = [f"passt_roberta.{i}.ckpt" for i in (1, 2, 3)]


def _ran(output: str) -> set[str]:
    return {line.split("'")[1] for line in output.splitlines() if line.startswith("Running stage")}


def test_release_stage_then_teacher_evaluate_stage_and_cli(imported_release, tmp_path):
    from salsa2.model.release_import import KALDI128

    served = tmp_path / "served"
    split_file(imported_release["whole"], served, 3)
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(  # the stages know only the text encoders salsa2 ships
        f"import sys\nsys.path.insert(0, {str(TESTS)!r})\nfrom helpers.released_model import register_tiny_text\n"
        f"register_tiny_text({imported_release['roberta']!r})\n")
    with FileServer(served) as server:
        params = demo_params(n_train=6, n_val=2, n_test=3)
        params["encoders"] = {"cnn": "mel64"}
        params["frontends"]["kaldi128"] = dict(KALDI128)
        params["released"] = {"salsa": {"parts": [f"{server.url}/{n}" for n in NAMES], "text_model": TINY_TEXT}}
        params["stage1"].update(epochs=1, batch_size=4)
        params["stage2"].update(epochs=1, batch_size=4, teachers=["cnn", "released-salsa"])
        project = make_project(tmp_path / "project", params)
        env = {"PYTHONPATH": f"{hook}:{project / 'src'}", "TOKENIZERS_PARALLELISM": "false"}
        out = run(["dvc", "repro"], project, env)
    assert {"release@salsa", "features@kaldi128", "ensemble", "stage2@cnn", "evaluate"} <= _ran(out)

    assert "up to date" in run(["dvc", "status"], project, env)  # models/released, a dep, is not left dirty
    targets = open_npz(project / "models/targets/cnn+released-salsa.npz")
    assert targets["members"].tolist() == ["cnn", "released-salsa"]
    released = open_npz(project / "models/sims/released-salsa.npz")
    assert released["audio_ids"].tolist() == open_npz(project / "models/sims/cnn.npz")["audio_ids"].tolist()
    metrics = json.loads((project / "reports/metrics.json").read_text())
    assert {"stage1-cnn", "stage2-cnn", "released-salsa", "chance"} <= set(metrics)
    assert 0.0 <= metrics["released-salsa"]["t2a"]["mAP@10"] <= 1.0
    assert "mAP@16" in metrics["released-salsa"]["t2a_multi"]

    cli = [sys.executable, "-m", "salsa2.cli.main"]
    info = run([*cli, "info", "salsa"], project, env)
    assert file_digest(imported_release["whole"], "sha256") in info and "mAP@10 40.11" in info
    assert "warning" not in info

