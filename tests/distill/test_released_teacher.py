"""A released model as one of the M teachers of the stage-2 targets (Primus et al. 2024, sec. 3): named
``released-<name>`` in ``stage2.teachers``, it embeds the training set from the cache of its own frontend with
its own caption normalisation (salsa2.distill.similarities.dump_teacher), and C-hat is the mean over all members."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from helpers import REPO
from helpers.released_use import CLIPS, DATASET, trained_checkpoint
from salsa2.config.params import training_params
from salsa2.distill.ensemble import targets_path, teacher_members, teacher_sets
from salsa2.model.locate import CheckpointNotFound
from salsa2.utils.npz import open_npz

pytest.importorskip("transformers")


def _params(teachers, encoders=None):
    from salsa2.model.release_import import KALDI128

    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["encoders"] = encoders or {"cnn": "mel64"}
    raw["frontends"]["kaldi128"] = dict(KALDI128)
    raw["stage2"]["teachers"] = teachers
    return training_params(raw)


def test_teacher_lists_name_released_models():
    params = _params(["cnn", "released-passt_roberta"], {"cnn": "mel64", "transformer": "mel64"})
    assert teacher_members(params, "transformer") == ["cnn", "released-passt_roberta"]
    assert teacher_sets(params) == {"cnn+released-passt_roberta": ["cnn", "released-passt_roberta"]}
    assert targets_path(params, "cnn", "models/targets") == Path("models/targets/cnn+released-passt_roberta.npz")
    assert teacher_members(_params("released-passt_roberta"), "cnn") == ["released-passt_roberta"]  # M = 1
    assert teacher_members(_params("all"), "cnn") == ["cnn"]  # all: the stage-1 models only
    for bad, match in ((["cnn", "released-"], "released-<its name"), (["cnn", "passt_roberta"], "not in encoders"),
                       (["cnn", "cnn"], "twice")):
        with pytest.raises(ValueError, match=match):
            teacher_members(_params(bad), "cnn")


@pytest.mark.slow
def test_a_released_teacher_embeds_the_train_set_its_own_way(imported_release, sound_library, tmp_path):
    from salsa2 import api
    from salsa2.distill.similarities import dump_teacher
    from salsa2.distill.targets import build_ensembles
    from salsa2.features.splits import load_split

    params = _params(["cnn", "released-salsa"])
    models, released = tmp_path / "stage1", tmp_path / "released"
    trained_checkpoint(models / "cnn")
    released.mkdir()
    os.symlink(imported_release["folder"], released / "salsa")
    sims = tmp_path / "sims"
    sims.mkdir()
    with pytest.raises(CheckpointNotFound, match="release@other"):
        dump_teacher(params, "released-other", models, released, sound_library.data, sound_library.features,
                     sound_library.text_features, sims / "x.npz")
    for member in ("cnn", "released-salsa"):
        dump_teacher(params, member, models, released, sound_library.data, sound_library.features,
                     sound_library.text_features, sims / f"{member}.npz")
    built = build_ensembles(params, sims, tmp_path / "targets")
    assert built == {"cnn+released-salsa": ["cnn", "released-salsa"]}

    # the released teacher's dump = the search API on the files and raw captions (kaldi128, authors' normalisation)
    model = api.load_model(released / "salsa")
    train = load_split(sound_library.data, "train")
    dump = open_npz(sims / "released-salsa.npz")
    assert dump["audio_ids"].tolist() == train.audio_ids and dump["caption_ids"].tolist() == train.caption_ids
    files = {f"{DATASET}/{Path(name).stem}": sound_library.root / name for name, *_ in CLIPS}
    audio = api.embed_audio(model, [files[a] for a in train.audio_ids])
    text = api.embed_text(model, train.texts)
    # random weights put every embedding near the projection's bias: compare against the spread between rows
    for got, want in ((dump["audio_emb"], audio), (dump["text_emb"], text)):
        assert _gap(np.asarray(got), want) <= 1e-3 * _spread(want)
    from salsa2.data.text_norm import normalize_for_model

    with torch.no_grad():
        spaces = model.model.encode_text([normalize_for_model(t, "spaces") for t in train.texts]).numpy()
    assert _gap(np.asarray(dump["text_emb"]), spaces) > 0.1 * _spread(text)  # the normalisation matters here

    # C-hat = the mean of the two teachers' similarities
    cnn = open_npz(sims / "cnn.npz")
    want = (np.asarray(cnn["audio_emb"]) @ np.asarray(cnn["text_emb"]).T
            + np.asarray(dump["audio_emb"]) @ np.asarray(dump["text_emb"]).T) / 2
    targets = open_npz(tmp_path / "targets" / "cnn+released-salsa.npz")
    assert targets["members"].tolist() == ["cnn", "released-salsa"]
    np.testing.assert_allclose(np.asarray(targets["similarity"]), want, atol=4 * np.finfo(np.float32).eps)


def _gap(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max())


def _spread(rows: np.ndarray) -> float:
    """The smallest largest-coordinate difference between two rows."""
    return min(_gap(rows[i], rows[j]) for i in range(len(rows)) for j in range(i + 1, len(rows)))
