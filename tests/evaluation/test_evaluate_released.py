"""A released model is evaluated like a trained one (salsa2.evaluation.evaluate, stage evaluate, `salsa2
evaluate`): it reads the log-mel cache of its own frontend (kaldi128) beside models that read another, its captions
are normalised as it says (the authors' normalisation), it is named ``released-<name>`` in the stage's metrics,
and the judgements' mAP@16 is scored for it without training anything."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from helpers.released_use import released_project, DATASET, released_stand_in, trained_checkpoint
from salsa2.evaluation.evaluate import evaluate_models, released_models
from salsa2.evaluation.metrics import bidirectional_metrics
from salsa2.features.caches import NoFeatureCache, feature_caches
from salsa2.features.splits import load_split
from salsa2.model.locate import CheckpointNotFound

pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    return trained_checkpoint(tmp_path_factory.mktemp("trained") / "cnn")


@pytest.fixture()
def project(imported_release, tmp_path, monkeypatch) -> Path:
    """A working directory whose models/released/salsa is the imported release (as stage release@salsa leaves it)."""
    monkeypatch.chdir(released_project(imported_release["folder"], tmp_path))
    return tmp_path


def _expected(folder: Path, library, cache: str, normalize: str, split: str = "test") -> dict:
    """The metrics of the model at ``folder`` computed directly: the named cache, the named caption normalisation."""
    from salsa2.evaluation.embed import model_scores
    from salsa2.model.checkpoint import load_checkpoint

    model, _ = load_checkpoint(folder)
    data = load_split(library.data, split, library.features / cache, model.frontend, normalize)
    return bidirectional_metrics(model_scores(model, data, None), data.audio_ids, data.caption_audio_ids)


@pytest.fixture(scope="module")
def expected(imported_release, trained, sound_library) -> dict:
    return {"released": _expected(imported_release["folder"], sound_library, "kaldi128", "authors"),
            "trained": _expected(trained, sound_library, "mel64", "spaces")}


def test_a_missing_frontend_cache_is_one_line_naming_the_model(sound_library, tmp_path):
    with pytest.raises(NoFeatureCache, match="released-salsa") as err:
        evaluate_models({"released-salsa": released_stand_in(tmp_path / "salsa")}, sound_library.data,
                        feature_caches(sound_library.features / "mel64"))
    assert "kaldi128" in str(err.value) and "\n" not in str(err.value)


def test_stage_names_released_models_and_refuses_one_not_imported(tmp_path, monkeypatch):
    (tmp_path / "models/released").mkdir(parents=True)
    released_stand_in(tmp_path / "models/released/salsa")
    monkeypatch.chdir(tmp_path)
    assert released_models("models/released", {"salsa": {"parts": ["u"]}}) == {
        "released-salsa": Path("models/released/salsa")}
    with pytest.raises(CheckpointNotFound, match=r"dvc repro release@other"):
        released_models("models/released", {"salsa": {}, "other": {}})


@pytest.mark.slow
def test_cli_evaluates_a_released_model_by_name_beside_a_trained_one(project, trained, sound_library, expected):
    """`salsa2 evaluate salsa MODEL --judgements`: the released model reads the kaldi128 cache, the trained one
    mel64 (both from the folder of caches), each normalises captions its own way; mAP@16 for every entry."""
    from salsa2.cli.main import app

    runner = CliRunner()
    common = ["--data", str(sound_library.data), "--features", str(sound_library.features)]
    result = runner.invoke(app, ["evaluate", "salsa", str(trained), *common, "--every",
                                 "--judgements", str(sound_library.judgements)])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert set(shown) == {"salsa", str(trained), "ensemble", "chance"}
    for name, key in (("salsa", "released"), (str(trained), "trained")):
        for metric, value in expected[key].items():
            assert shown[name][metric] == pytest.approx(value, abs=5.1e-5), (name, metric)
    for name in shown:  # the judgements' dataset is the one dataset of the test clips
        assert 0.0 <= shown[name]["t2a_multi/mAP@16"] <= 1.0
    missing = runner.invoke(app, ["evaluate", "nosuch", *common])
    assert missing.exit_code == 2 and "release@nosuch" in missing.output
    assert len(missing.output.strip().splitlines()) == 1


@pytest.mark.slow
def test_evaluate_stage_reports_released_models(imported_release, trained, sound_library, expected, tmp_path):
    """stages/evaluate.py with one encoder's stage-1/2 models and params ``released: {salsa: ...}``."""
    import shutil
    import subprocess
    import sys

    import yaml

    from helpers import REPO, TESTS

    work = tmp_path / "work"
    for stage in ("stage1", "stage2"):
        (work / "models" / stage).mkdir(parents=True)
        shutil.copytree(trained, work / "models" / stage / "cnn")
    (work / "models/released").mkdir()
    os.symlink(imported_release["folder"], work / "models/released/salsa")
    features = work / "data/features"
    features.mkdir(parents=True)
    for name in ("mel64", "kaldi128"):
        os.symlink(sound_library.features / name, features / name)
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["encoders"] = {"cnn": "mel64"}
    params["frontends"]["kaldi128"] = _kaldi128()
    params["released"] = {"salsa": {"parts": ["https://example.org/passt_roberta.1.ckpt"]}}
    params["evaluate"].update(relevance=str(sound_library.judgements), relevance_dataset=DATASET)
    (work / "params.yaml").write_text(yaml.safe_dump(params))
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(
        f"import sys\nsys.path.insert(0, {str(TESTS)!r})\n"
        f"from helpers.released_model import register_tiny_text\nregister_tiny_text({imported_release['roberta']!r})\n")
    env = {**os.environ, "PYTHONPATH": f"{hook}{os.pathsep}{REPO / 'src'}", "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, str(REPO / "stages/evaluate.py"), "--stage1", "models/stage1", "--stage2", "models/stage2",
           "--released", "models/released", "--data", str(sound_library.data), "--features", "data/features",
           "--text-features", str(sound_library.text_features), "--judgements", str(sound_library.judgements),
           "--live", "reports/train", "--metrics", "reports/metrics.json", "--headline", "reports/headline.json",
           "--curves", "reports/curves.png"]
    proc = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.loads((work / "reports/metrics.json").read_text())
    assert {"stage1-cnn", "stage2-cnn", "released-salsa", "ensemble-stage1", "chance"} <= set(metrics)
    for metric in ("mAP@10", "R@1", "R@5"):
        assert metrics["released-salsa"]["t2a"][metric] == pytest.approx(expected["released"][f"t2a/{metric}"],
                                                                          abs=5.1e-6)
    assert "mAP@16" in metrics["released-salsa"]["t2a_multi"]
    assert "released-salsa" in json.loads((work / "reports/headline.json").read_text())
    assert np.isfinite(metrics["stage1-cnn"]["t2a"]["R@1"])


def _kaldi128() -> dict:
    from salsa2.model.release_import import KALDI128

    return dict(KALDI128)
