"""The paper preset (params-paper.yaml, salsa2.config.presets): it parses, its override arguments reproduce it, and
DVC applies them."""

from __future__ import annotations

import inspect
import shutil
import sys

import numpy as np
import pytest
import yaml

from salsa2.config import presets
from salsa2.config.params import load_params, training_params
from salsa2.features.splits import collate_mels, crop_frames
from salsa2.model.encoders import AUDIO_ENCODERS
from salsa2.model.encoders.efficientat import build_mn40_as_ext
from helpers import REPO
from helpers.paper import PRESET


def test_paper_preset_parses_and_its_overrides_reproduce_it():
    base = yaml.safe_load((REPO / "params.yaml").read_text())
    merged = presets.apply(PRESET, base)
    params = training_params(merged)
    assert params.embed_dim == 1024 and params.text.model == "roberta-large"
    for name in params.encoders:
        enc = params.audio_encoder(name)
        assert enc.arch in AUDIO_ENCODERS
        params.frontend(enc.frontend)
    args = presets.override_args(PRESET, base)
    assert "+audio_encoders.atst={arch:atst_frame,lr:2.0e-05,batch_size:64," \
           "kwargs:{weights:pretrained,freq_warp:0.0,snippet_seconds:10.0}}" in args
    # the selection and the caches are replaced, not merged: DVC deletes the demo's first
    assert args[:4] == ["-S", "~encoders", "-S", "+encoders={passt:kaldi128,atst:mel64_atst,mn:kaldi128}"]
    assert "~frontends" in args and "embed_dim=1024" in args
    # every float is written so that YAML reads it back as a float
    for a in args[1::2]:
        for tok in a.replace("{", ",").replace("}", ",").replace("=", ",").split(","):
            val = tok.split(":")[-1]
            if "e-" in val:
                assert isinstance(yaml.safe_load(val), float), a


def test_dvc_applies_the_documented_overrides(tmp_path):
    """The `dvc exp run -S ...` arguments, applied by DVC's own writer, give exactly the merged preset."""
    hydra = pytest.importorskip("dvc.utils.hydra")
    base = yaml.safe_load((REPO / "params.yaml").read_text())
    target = tmp_path / "params.yaml"
    target.write_text((REPO / "params.yaml").read_text())
    hydra.apply_overrides(str(target), presets.override_args(PRESET, base)[1::2])
    assert load_params(target) == presets.apply(PRESET, base)


PRESETS = sorted((REPO / "presets").glob("*.yaml"))


@pytest.mark.parametrize("path", PRESETS, ids=[p.stem for p in PRESETS])
def test_each_preset_carries_the_whole_experiment(path):
    """Encoders (the paper's, through ``extends``), downloads, the data read from them, evaluation: nothing is
    left to the demo's params."""
    from salsa2.data.datasets import DATASETS

    base = yaml.safe_load((REPO / "params.yaml").read_text())
    preset = presets.load(path)
    merged = presets.apply(preset, base)
    assert merged["encoders"] == PRESET["encoders"] and merged["text"]["model"] == "roberta-large"
    training_params(merged)
    entries = merged["data"]["datasets"] + merged["data"]["pretrain"]
    assert entries and all(e["name"] in DATASETS.names() and e["raw"] in merged["downloads"] for e in entries)
    assert set(merged["downloads"]) == {e["raw"] for e in entries}  # no download left over from the demo
    assert all(d["dataset"] in DATASETS.names() for d in merged["downloads"].values())
    relevance = merged["evaluate"]["relevance"]
    if relevance is not None:  # a documented place that is no DVC output, fetched and pinned
        assert relevance.startswith("data/relevance/") and len(merged["evaluate"]["relevance_sha256"]) == 64
        assert merged["evaluate"]["relevance_dataset"] == merged["data"]["datasets"][0]["name"]


def test_command_line_settings_merge_into_the_preset():
    base = yaml.safe_load((REPO / "params.yaml").read_text())
    cmd, params, dry = presets.experiment(
        "paper-clotho", ["-S", "stage2.teachers=self", "-S", "+extra.k=1", "--queue", "-S",
                         "encoders={passt: kaldi128}"], base)
    assert not dry and cmd[:3] == ["dvc", "exp", "run"] and cmd[-3:] == ["-S", "+extra.k=1", "--queue"]
    assert "stage2.teachers=self" in cmd and "stage2.teachers=all" not in cmd  # one value per key, no repeats
    assert params["stage2"]["teachers"] == "self" and params["extra"] == {"k": 1}
    assert params["encoders"] == {"passt": "kaldi128"} and params["downloads"] == {"clotho": {"dataset": "clotho",
                                                                                             "args": {}}}
    assert presets.experiment("paper-clotho", ["--dry"], base)[2]
    with pytest.raises(presets.UserError, match="preset 'paper-nope'.*paper-clotho"):
        presets.load("paper-nope")


def test_preview_before_anything_is_downloaded(tmp_path):
    """``salsa2 exp <preset> --dry`` in a fresh project: the stages that will run, the downloads, disk and GPU time,
    with no data, no dvc.lock and no network (DVC's own ``dvc exp run --dry`` fails on this pipeline)."""
    from helpers.dvc_project import demo_params, make_project, run

    shutil.copytree(REPO / "presets", tmp_path / "p" / "presets")
    root = make_project(tmp_path / "p", demo_params(), {"params-paper.yaml": (REPO / "params-paper.yaml").read_text()})
    out = run([sys.executable, "-m", "salsa2.cli", "exp", "paper-pretrain", "--dry", "-S", "stage2.sup_weight=1.0"],
              root, env={"PYTHONPATH": str(REPO / "src")})
    for stage in ("download@wavcaps", "prepare", "stage1@passt", "ensemble", "stage2@mn", "evaluate"):
        assert f"runs  {stage}  (not in dvc.lock" in out
    assert "wavcaps: 403,050 clips" in out and "GPU time" in out and "disk (GB" in out
    assert yaml.safe_load((root / "params.yaml").read_text()) == demo_params()  # a preview changes nothing


def test_preview_marks_what_a_change_reruns():
    """Against a dvc.lock recording the current params, a stage-2 setting re-runs stage 2 and what follows; a
    new download re-runs everything downstream of the data; the demo, untouched, stays."""
    from salsa2.config.preview import expand, mark_runs

    base = yaml.safe_load((REPO / "params.yaml").read_text())
    spec = yaml.safe_load((REPO / "dvc.yaml").read_text())

    def value(key):
        node = base
        for part in key.split("."):
            node = node[part]
        return node

    lock = {"stages": {s.name: {"cmd": s.cmd, "params": {"params.yaml": {k: value(k) for k in s.params}}}
                       for s in expand(spec, base)}}
    runs = {s.name for s in mark_runs(expand(spec, base), base, lock) if s.runs}
    assert runs == set()
    changed = presets.apply({"stage2": {"lr": 0.002}}, base)
    runs = {s.name for s in mark_runs(expand(spec, changed), changed, lock) if s.runs}
    assert runs == {"params", "stage2@cnn", "stage2@transformer", "evaluate", "moments_evaluate"}
    clotho = presets.apply(presets.load(REPO / "presets/paper-clotho.yaml"), base)
    staged = {s.name: s for s in mark_runs(expand(spec, clotho), clotho, lock)}
    assert staged["download@clotho"].why == ["not in dvc.lock"] and not staged["demo"].runs
    assert not staged["moments_demo"].runs  # built from the demo's clips, untouched
    assert all(s.runs for n, s in staged.items() if n not in ("demo", "moments_demo"))


def test_paper_preset_trains_as_the_authors_code():
    """The authors' training (OptimusPrimus/salsa at 983b450, ``ex_dcase24.py``): 2e-5 for every encoder and head
    (Tymofieiev 2025's ATST rate 4e-6 is the documented alternative), clips cropped at random to 30 s
    (``set_fixed_length(30)``), and MobileNet on all three 10 s snippets of the 30 s zero-padded clip."""
    base = yaml.safe_load((REPO / "params.yaml").read_text())
    params = training_params(presets.apply(PRESET, base))
    rates = {params.audio_encoder(n).lr for n in params.encoders} | {params.text.lr, params.stage1.lr, params.stage2.lr}
    assert rates == {2e-5}
    assert params.stage1.max_seconds == params.stage2.max_seconds == 30.0
    # a 30 s clip is never cropped, a longer one is cut to the frames of a 30 s clip
    for name in params.encoders:
        fe = params.frontend(params.audio_encoder(name).frontend)
        frames = crop_frames(fe, params.stage1.max_seconds)
        assert frames == fe.num_frames(30 * fe.sample_rate)
        thirty, longer = np.zeros((2, frames), np.float32), np.ones((2, frames + 700), np.float32)
        _, lengths = collate_mels([thirty, longer], frames, np.random.default_rng(0))
        assert lengths.tolist() == [frames, frames]
    mn = params.audio_encoder("mn")
    assert mn.arch == "mn40_as_ext"
    pad, snippet = mn.kwargs["train_pad_seconds"], mn.kwargs.get("snippet_seconds", 10.0)
    assert pad / snippet == 3 and pad == params.stage1.max_seconds
    assert inspect.signature(build_mn40_as_ext).parameters["train_pad_seconds"].default == pad  # the builder agrees
