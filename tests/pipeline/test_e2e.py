"""The whole DVC pipeline on a shrunken demo: repro, no-op repro, targeted re-runs, an experiment variant."""

import json
import re
import shlex
import shutil
from pathlib import Path

import pytest
import yaml

from helpers import REPO
from helpers.dvc_project import demo_params, make_project, run

pytestmark = pytest.mark.slow


def _run(cmd: list[str], cwd: Path) -> str:
    return run(cmd, cwd)


def _flat(nested: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in nested.items():
        out.update(_flat(value, f"{prefix}{key}/") if isinstance(value, dict) else {f"{prefix}{key}": value})
    return out


def _stale(project: Path) -> set[str]:
    return set(json.loads(_run(["dvc", "status", "--json"], project) or "{}"))


def _ran(output: str) -> set[str]:
    return {line.split("'")[1] for line in output.splitlines() if line.startswith("Running stage")}


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    params = demo_params(n_train=40, n_val=12, n_test=12)
    params["stage1"].update(epochs=2, batch_size=16)
    params["stage2"].update(epochs=1, batch_size=16)
    params["moments"]["demo"].update(recordings=2, min_seconds=30, max_seconds=60, min_clips=1, max_clips=3)
    root = make_project(tmp_path_factory.mktemp("project"), params)
    return root


def test_repro_writes_every_report(project):
    out = _run(["dvc", "repro"], project)
    assert "stage2@transformer" in _ran(out) and "evaluate" in _ran(out)
    metrics = json.loads((project / "reports/metrics.json").read_text())
    expected = {f"stage{s}-{e}" for s in (1, 2) for e in ("cnn", "transformer")}
    assert expected | {"ensemble-stage1", "ensemble-stage2", "chance"} <= set(metrics)
    for name in expected:
        assert 0 <= metrics[name]["t2a"]["mAP@10"] <= 1
        assert metrics[name]["best_epoch"] >= 0
    assert (project / "reports/training_curves.png").stat().st_size > 10_000
    assert (project / "reports/train/stage1-cnn/plots/metrics/val/t2a/mAP@10.tsv").exists()
    assert any(k.startswith("t2a_multi/") for k in _flat(metrics["stage2-cnn"]))  # the demo's judgements
    assert sorted(p.name for p in (project / "models/targets").iterdir()) == ["cnn+transformer.npz"]  # one C-hat
    shown = _run(["dvc", "metrics", "show"], project)
    assert "stage2-cnn.mAP@10" in shown and "stage2-cnn.a2t" not in shown  # the short headline file is the metric
    moments = json.loads((project / "reports/moments.json").read_text())
    assert set(moments) == expected | {"ensemble-stage1", "ensemble-stage2", "chance"}
    assert all(set(m) == {"R1@0.5", "R1@0.7", "mAP", "mAP@0.5", "mAP@0.75"} for m in moments.values())
    assert sorted(p.name for p in (project / "reports/moments").iterdir()) == sorted(
        f"{name}.jsonl" for name in set(moments) - {"chance"})
    assert "stage2-cnn.R1@0.7" in shown  # the moment metrics are a DVC metric too
    summary = json.loads((project / "reports/train/stage1-cnn/metrics.json").read_text())
    assert summary["best_epoch"] == metrics["stage1-cnn"]["best_epoch"] == summary["step"]
    _run(["git", "add", "-A"], project)
    _run(["git", "commit", "-qm", "baseline"], project)


def test_second_repro_runs_nothing(project):
    out = _run(["dvc", "repro"], project)
    assert _ran(out) == set()


def test_stage2_param_reruns_only_stage2_and_evaluate(project):
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["stage2"]["sup_weight"] = 0.5
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    out = _run(["dvc", "repro"], project)
    assert _ran(out) == {"params", "stage2@cnn", "stage2@transformer", "evaluate", "moments_evaluate"}
    _run(["git", "checkout", "--", "."], project)  # params, dvc.lock and reports of the baseline
    _run(["git", "clean", "-fdq", "--", "reports"], project)  # curves the variant added (e.g. new loss terms)
    _run(["dvc", "checkout", "-q"], project)


@pytest.mark.parametrize("edited, stale", [
    ("src/salsa2/search/query.py", set()),  # used by `salsa2 search` only: no stage
    ("src/salsa2/data/prepare.py", {"prepare"}),  # a body that lived in pipeline.py
    ("src/salsa2/audio/frontends.py", {"features@mel64", "text_features", "stage1@cnn", "stage1@transformer",
                                 "ensemble", "stage2@cnn", "stage2@transformer", "evaluate", "moments_evaluate"}),
    ("src/salsa2/moments/metrics.py", {"moments_evaluate"}),
])
def test_code_edit_marks_exactly_its_importers(project, edited, stale):
    path = project / edited
    original = path.read_text()
    path.write_text(original + "\n# edited\n")
    try:
        assert _stale(project) == stale
    finally:
        path.write_text(original)
    assert _stale(project) == set()


def test_an_unused_frontend_retrains_nothing(project):
    """encoders maps each encoder to its frontend: a model's stages depend on that frontend's params and cache
    alone. A new frontend gets its cache; ensemble and evaluate (which read data/features whole) re-run and
    give the same targets, so no model is trained again."""
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["frontends"]["mel40"] = {**params["frontends"]["mel64"], "n_mels": 40}
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    try:
        assert _stale(project) == {"params", "features@mel40"}
        ran = _ran(_run(["dvc", "repro"], project))
        assert "features@mel40" in ran and not {s for s in ran if s.startswith(("stage1@", "stage2@"))}, ran
    finally:
        _run(["git", "checkout", "--", "."], project)
        shutil.rmtree(project / "data/features/mel40", ignore_errors=True)
        _run(["dvc", "checkout", "-q"], project)
    assert _stale(project) == set()


@pytest.mark.parametrize("setting", ["moments.window=6.0", "moments.method=nms", "moments.methods.threshold.z=0.5"])
def test_moment_params_rerun_only_the_moment_evaluation(project, setting):
    before = json.loads((project / "reports/moments.json").read_text())
    out = _run(["dvc", "exp", "run", "-S", setting], project)
    assert _ran(out) == {"params", "moments_evaluate"}  # params: the check, seconds
    assert json.loads((project / "reports/moments.json").read_text()).keys() == before.keys()
    _run(["git", "checkout", "--", "."], project)
    _run(["dvc", "checkout", "-q"], project)


def test_judgements_are_optional(project):
    out = _run(["dvc", "exp", "run", "-S", "evaluate.relevance=null"], project)
    assert _ran(out) == {"params", "prepare", "evaluate"}  # data/prepared is unchanged: nothing else re-runs
    metrics = json.loads((project / "reports/metrics.json").read_text())
    assert not any(k.startswith("t2a_multi/") for k in _flat(metrics["stage2-cnn"]))
    _run(["git", "checkout", "--", "."], project)  # params, dvc.lock and reports of the baseline
    _run(["git", "clean", "-fdq", "--", "reports"], project)  # curves the variant added (e.g. new loss terms)
    _run(["dvc", "checkout", "-q"], project)


def test_sigmoid_experiment_and_metrics_diff(project):
    out = _run(["dvc", "exp", "run", "-S", "loss=sigmoid"], project)
    ran = _ran(out)
    assert {"stage1@cnn", "stage1@transformer", "evaluate"} <= ran and "demo" not in ran
    diff = _run(["dvc", "metrics", "diff", "--all"], project)
    assert "stage1-cnn.mAP@10" in diff
    # The readable view docs/dvc.md gives: the params that differ and the headline metrics, no hash columns.
    show = re.search(r"^dvc exp show .*$", (REPO / "docs" / "dvc.md").read_text(), re.M).group(0)
    columns = _run([*shlex.split(show), "--no-pager", "--csv"], project).splitlines()[0].split(",")
    assert "loss" in columns and "stage2-cnn.mAP@10" in columns, columns
    assert not [c for c in columns if "/" in c] and len(columns) < 40, columns
