"""What the stages promise DVC: every knob in params.yaml, one C-hat per teacher set, the reject-share guard,
headline metrics and best-epoch dvclive summaries."""

from __future__ import annotations

import ast
import dataclasses
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from helpers import REPO
from salsa2.config.params import TrainParams, load_params, training_params
from salsa2.distill.ensemble import targets_path, teacher_sets
from salsa2.evaluation.evaluate import write_headline
from salsa2.data.tables import TooManyRejects, check_reject_share

STAGE2_ONLY = {"teachers", "targets", "relevance_weight"}
sys.path.insert(0, str(REPO / "stages"))
from common import best_epoch_summary  # noqa: E402


@pytest.mark.parametrize("stage", ["stage1", "stage2"])
def test_every_training_knob_is_in_params_yaml(stage: str) -> None:
    """`-S stage1.precision=bf16` and `dvc params diff` need the key in params.yaml (dataclass defaults are hidden)."""
    raw = load_params(REPO / "params.yaml")
    fields = {f.name for f in dataclasses.fields(TrainParams)} - (STAGE2_ONLY if stage == "stage1" else set())
    assert not fields - set(raw[stage]), f"params.yaml {stage} lacks {sorted(fields - set(raw[stage]))}"


def _params(teachers):
    raw = load_params(REPO / "params.yaml")
    raw["encoders"] = {"cnn": "mel64", "transformer": "mel64"}
    raw["stage2"] = {**raw["stage2"], "teachers": teachers}
    return training_params(raw)


def test_one_target_file_per_distinct_teacher_set() -> None:
    shared = _params("all")
    assert teacher_sets(shared) == {"cnn+transformer": ["cnn", "transformer"]}
    assert targets_path(shared, "cnn", "t") == targets_path(shared, "transformer", "t") == Path("t/cnn+transformer.npz")
    own = _params("self")
    assert teacher_sets(own) == {"cnn": ["cnn"], "transformer": ["transformer"]}
    assert targets_path(own, "transformer", "t") == Path("t/transformer.npz")


def test_reject_share_guard_names_the_rejects_file() -> None:
    check_reject_share(5, 100, "x/rejects.csv", 0.05)  # at the limit: fine
    with pytest.raises(TooManyRejects, match=r"100 of 100 clips rejected .*x/rejects\.csv"):
        check_reject_share(100, 100, "x/rejects.csv", 0.05)
    with pytest.raises(TooManyRejects):
        check_reject_share(0, 0, "x/rejects.csv", 0.05)  # nothing to cache at all


def test_features_stage_exits_2_when_too_many_clips_are_rejected(tmp_path: Path) -> None:
    """Every clip unreadable: one line naming the rejects file, exit status 2, not an empty cache."""
    import pandas as pd
    import yaml

    from salsa2.data.tables import write_tables

    (tmp_path / "stages").mkdir()
    for name in ("common.py", "features.py"):
        (tmp_path / "stages" / name).write_text((REPO / "stages" / name).read_text())
    (tmp_path / "src").symlink_to(REPO / "src")
    params = load_params(REPO / "params.yaml")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    audio = pd.DataFrame({"audio_id": ["d/a", "d/b"], "dataset": "d", "split": "train", "path": ["a.wav", "b.wav"],
                          "duration": 1.0, "sample_rate": 16000, "channels": 1})
    captions = pd.DataFrame({"caption_id": ["d/a#0", "d/b#0"], "audio_id": ["d/a", "d/b"], "index": 0,
                             "text": "x", "raw_text": "x"})
    for folder in ("data/prepared", "data/pretrain"):
        write_tables(tmp_path / folder, audio, captions)
    proc = subprocess.run([sys.executable, "stages/features.py", "mel64", "--data", "data/prepared", "data/pretrain",
                           "--raw", "data/raw", "--unpacked", "data/unpacked", "--out", "data/features/mel64"],
                          cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 2, proc.stderr[-2000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert "2 of 2 clips rejected" in last and "data/features/mel64/rejects.csv" in last


def test_headline_metrics_are_short(tmp_path: Path) -> None:
    full = {"stage1-cnn": {"t2a/mAP@10": 0.31234567, "t2a/R@1": 0.2, "t2a/R@5": 0.5, "t2a/R@10": 0.7,
                           "a2t/mAP@10": 0.3, "best_epoch": 3},
            "chance": {"t2a/mAP@10": 0.01, "t2a/R@1": 0.0, "t2a/R@10": 0.1}}
    write_headline(tmp_path / "h.json", full)
    assert json.loads((tmp_path / "h.json").read_text()) == {"stage1-cnn": {"mAP@10": 0.31235, "R@1": 0.2,
                                                                            "R@10": 0.7}}


def test_dvclive_summary_is_the_best_epoch() -> None:
    history = [{"epoch": 0, "train/loss": 2.0, "val/t2a/mAP@10": 0.1, "lr": 1e-3, "seconds": 1.0},
               {"epoch": 1, "train/loss": 1.5, "val/t2a/mAP@10": 0.3, "lr": 5e-4, "seconds": 1.0},
               {"epoch": 2, "train/loss": 1.0, "val/t2a/mAP@10": 0.2, "lr": 1e-6, "seconds": 1.0}]
    assert best_epoch_summary(history, 1) == {"step": 1, "best_epoch": 1, "train": {"loss": 1.5},
                                              "val": {"t2a": {"mAP@10": 0.3}}, "lr": 5e-4}


def _cached_outs() -> list[str]:
    """Every ``outs`` path template of dvc.yaml that DVC caches (``cache: false`` outs may be committed)."""
    import yaml

    found = []
    for stage in yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"].values():
        body = stage.get("do", stage)
        for out in body.get("outs", []):
            path, opts = (out, {}) if isinstance(out, str) else next(iter(out.items()))
            if (opts or {}).get("cache", True):
                found.append(path)
    return found


def test_no_cached_output_is_tracked_by_git() -> None:
    """A git-tracked file inside a DVC output (e.g. a committed models/targets/.gitignore) stops `dvc repro` in
    every fresh clone ("output ... is already tracked by SCM"). DVC's own .gitignore beside templated outputs
    (models/stage1/.gitignore) is fine."""
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    if not tracked:
        pytest.skip("not a git checkout")
    bad = []
    for out in _cached_outs():
        if "${" in out:  # one member per name: prefix/<name><suffix>, a file or a folder
            prefix, suffix = out[: out.index("${")], out[out.rindex("}") + 1 :]
            rests = [f[len(prefix):] for f in tracked if f.startswith(prefix)]
            bad += [prefix + r for r in rests if r != ".gitignore" and ("/" in r or (suffix and r.endswith(suffix)))]
        else:
            bad += [f for f in tracked if f == out or f.startswith(out.rstrip("/") + "/")]
    assert not bad, f"git tracks files inside DVC outputs: {bad}; `git rm --cached` them"


def test_stage_scripts_name_no_paths() -> None:
    """What a stage reads and writes is named once, as an argument on its dvc.yaml cmd: no script holds a path of
    the pipeline (data/, models/, reports/) that could drift from dvc.yaml's deps and outs."""
    found = []
    for script in sorted((REPO / "stages").glob("*.py")):
        for node in ast.walk(ast.parse(script.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and \
                    re.search(r"\b(data|models|reports)/", node.value):
                found.append(f"{script.name}:{node.lineno}: {node.value[:60]!r}")
    assert not found, f"paths in stage scripts (pass them on the dvc.yaml cmd): {found}"


@pytest.mark.slow
def test_bad_params_stop_dvc_at_the_params_stage_before_any_stage_runs(tmp_path: Path) -> None:
    """A top-level typo and an unknown loss end `dvc repro` / `dvc exp run` in stage params, in one line naming
    the key, within seconds; no other stage runs, so none deletes its outputs."""
    import os
    import time

    from helpers.dvc_project import _GIT_USER, demo_params, make_project

    params = demo_params(n_train=8, n_val=4, n_test=4)
    params["augmnet"] = {"mixco": True}
    root = make_project(tmp_path / "p", params)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "DVC_NO_ANALYTICS": "1", **_GIT_USER}

    def dvc(*args: str) -> tuple[subprocess.CompletedProcess, float]:
        start = time.perf_counter()
        proc = subprocess.run(["dvc", *args], cwd=root, env=env, capture_output=True, text=True)
        return proc, time.perf_counter() - start

    proc, _ = dvc("repro")
    assert proc.returncode != 0
    assert "error: params.yaml: unknown top-level key 'augmnet'; did you mean 'augment'?" in proc.stderr + proc.stdout
    assert "Running stage 'demo'" not in proc.stdout and not (root / "data/demo").exists()
    del params["augmnet"]
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    subprocess.run(["git", "commit", "-qam", "fixed"], cwd=root, env=env, check=True)
    proc, seconds = dvc("exp", "run", "-S", "loss=nosuch")
    assert proc.returncode != 0
    assert "error: params.yaml: loss is 'nosuch'; choose one of nt_xent, sigmoid, listnet" in proc.stderr + proc.stdout
    ran = [line for line in proc.stdout.splitlines() if line.startswith("Running stage")]
    assert ran == ["Running stage 'params':"], ran
    assert seconds < 60, f"dvc exp run took {seconds:.1f} s to refuse loss=nosuch"


def test_loss_terms_that_repeat_the_loss_are_not_logged_twice() -> None:
    one_term = [{"epoch": 0, "train/nt_xent_loss": 2.0, "train/loss": 2.0, "val/t2a/mAP@10": 0.1, "lr": 1e-3},
                {"epoch": 1, "train/nt_xent_loss": 1.5, "train/loss": 1.5, "val/t2a/mAP@10": 0.3, "lr": 5e-4}]
    assert best_epoch_summary(one_term, 1)["train"] == {"loss": 1.5}
    distill_only = [{"epoch": 0, "train/dist_loss": 1.3, "train/dist": 1.3, "train/loss": 1.3}]
    assert best_epoch_summary(distill_only, 0)["train"] == {"loss": 1.3}
    mixed = [{"epoch": 0, "train/sup_loss": 0.5, "train/sup": 1.0, "train/dist_loss": 0.6, "train/dist": 1.2,
              "train/loss": 1.1}]
    assert best_epoch_summary(mixed, 0)["train"] == {"sup_loss": 0.5, "sup": 1.0, "dist_loss": 0.6, "dist": 1.2,
                                                     "loss": 1.1}
