"""A released model through the whole pipeline of a tiny DVC project: stage release@salsa imports it from a
loopback HTTP server (three parts), stage ensemble uses it as one of the teachers (``released-salsa`` in
stage2.teachers), stage evaluate reports it as ``released-salsa``, and `salsa2 evaluate salsa` scores it on the
test split with the judgements' mAP@16 without training anything."""

from __future__ import annotations

import json
import sys

import pytest

from helpers import TESTS
from helpers.dvc_project import demo_params, make_project, run
from helpers.file_server import FileServer
from helpers.released_model import TINY_TEXT, split_file
from salsa2.utils.digest import file_digest

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
        params = demo_params(n_train=8, n_val=4, n_test=4)
        params["encoders"] = {"cnn": "mel64"}
        params["frontends"]["kaldi128"] = dict(KALDI128)
        params["released"] = {"salsa": {"parts": [f"{server.url}/{n}" for n in NAMES], "text_model": TINY_TEXT}}
        params["stage1"].update(epochs=1, batch_size=4)
        params["stage2"].update(epochs=1, batch_size=4, teachers=["cnn", "released-salsa"])
        project = make_project(tmp_path / "project", params)
        env = {"PYTHONPATH": f"{hook}:{project / 'src'}", "TOKENIZERS_PARALLELISM": "false"}
        out = run(["dvc", "repro"], project, env)
    assert {"release@salsa", "features@kaldi128", "ensemble", "stage2@cnn", "evaluate"} <= _ran(out)

    targets = project / "models/targets/cnn+released-salsa.npz"
    assert targets.is_file() and (project / "models/sims/released-salsa.npz").is_file()
    metrics = json.loads((project / "reports/metrics.json").read_text())
    assert {"stage1-cnn", "stage2-cnn", "released-salsa", "chance"} <= set(metrics)
    assert 0.0 <= metrics["released-salsa"]["t2a"]["mAP@10"] <= 1.0
    assert "mAP@16" in metrics["released-salsa"]["t2a_multi"]

    # no training: the CLI scores the imported model by its name, as the stage did
    cli = [sys.executable, "-m", "salsa2.cli.main"]
    shown = _json_tail(run([*cli, "evaluate", "salsa", "--judgements", "data/judgements.csv",
                            "--relevance-dataset", "demo"], project, env))
    for key in ("mAP@10", "R@1", "R@5", "R@10"):
        assert shown[f"t2a/{key}"] == pytest.approx(metrics["released-salsa"]["t2a"][key], abs=5.1e-5)
    assert shown["t2a_multi/mAP@16"] == pytest.approx(metrics["released-salsa"]["t2a_multi"]["mAP@16"], abs=5.1e-5)
    info = run([*cli, "info", "salsa"], project, env)
    assert file_digest(imported_release["whole"], "sha256") in info and "mAP@10 40.11" in info
    assert "warning" not in info


def _json_tail(output: str) -> dict:
    """The JSON object a command printed on stdout (``run`` appends stderr: progress bars)."""
    start = 0 if output.startswith("{") else output.index("\n{") + 1
    return json.JSONDecoder().raw_decode(output[start:])[0]
