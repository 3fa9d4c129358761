"""Training loop, checkpoints and correspondence estimates on the tiny demo."""

import numpy as np
import pytest
import torch

from salsa2.model.checkpoint import load_checkpoint
from salsa2.features.splits import load_split
from salsa2.evaluation.embed import embed_split_audio, embed_captions
from salsa2.evaluation.metrics import bidirectional_metrics
from salsa2.distill.targets import TeacherTargets, ensemble_similarities, save_similarities, save_targets
from salsa2.features.text_cache import TextFeatureStore
from salsa2.training.loop import lr_factor


def test_schedule_warmup_then_cosine():
    assert lr_factor(0.0, 1, 10, 0.01) == 0.0
    assert lr_factor(0.5, 1, 10, 0.01) == pytest.approx(0.5)
    assert lr_factor(1.0, 1, 10, 0.01) == pytest.approx(1.0)
    assert lr_factor(5.5, 1, 10, 0.01) == pytest.approx(0.01 + 0.99 * 0.5)
    assert lr_factor(10.0, 1, 10, 0.01) == pytest.approx(0.01)
    # cosine_end = 15 of 20 epochs (the authors' command): the cosine ends at 15, lr_min is held after it
    assert lr_factor(8.0, 1, 20, 0.01, 15) == pytest.approx(0.01 + 0.99 * 0.5)
    assert lr_factor(15.0, 1, 20, 0.01, 15) == 0.01 and lr_factor(19.9, 1, 20, 0.01, 15) == 0.01
    assert lr_factor(14.9, 1, 20, 0.01, 15) > 0.01


def _t2a_map(model, data, store):
    sim = embed_split_audio(model, data) @ embed_captions(model, data, store).T
    learned = bidirectional_metrics(sim, data.audio_ids, data.caption_audio_ids)["t2a/mAP@10"]
    chance = bidirectional_metrics(np.zeros_like(sim), data.audio_ids, data.caption_audio_ids)["t2a/mAP@10"]
    return learned, chance


def test_trained_model_beats_chance_and_reloads_identically(trained_model, tiny_demo):
    model, info = load_checkpoint(trained_model)
    assert 0 <= info["best_epoch"] < 8
    store = TextFeatureStore(tiny_demo.text_features)
    split = {s: load_split(tiny_demo.data, s, tiny_demo.features, model.frontend, normalize_text=True)
             for s in ("train", "test")}
    learned, chance = _t2a_map(model, split["train"], store)
    assert learned > 3 * chance  # it fits its training pairs ...
    learned, chance = _t2a_map(model, split["test"], store)
    assert learned > 1.3 * chance  # ... and ranks unseen clips better than chance (16 clips: a noisy figure)
    again, _ = load_checkpoint(trained_model)
    torch.testing.assert_close(embed_split_audio(again, split["test"]), embed_split_audio(model, split["test"]))


def test_ensemble_aligns_members_by_id(tmp_path):
    rng = np.random.default_rng(0)
    a, t = rng.normal(size=(4, 3)), rng.normal(size=(6, 3))
    b, u = rng.normal(size=(4, 3)), rng.normal(size=(6, 3))
    audio_ids, caption_ids = [f"a{i}" for i in range(4)], [f"c{j}" for j in range(6)]
    save_similarities(tmp_path / "m1.npz", audio_ids, caption_ids, a, t)
    perm_a, perm_c = [2, 0, 3, 1], [5, 4, 3, 2, 1, 0]
    save_similarities(tmp_path / "m2.npz", [audio_ids[i] for i in perm_a], [caption_ids[j] for j in perm_c],
                      b[perm_a], u[perm_c])
    mean, rows, cols = ensemble_similarities([tmp_path / "m1.npz", tmp_path / "m2.npz"])
    assert rows == audio_ids and cols == caption_ids
    np.testing.assert_allclose(mean, (a @ t.T + b @ u.T) / 2, rtol=1e-5)
    save_targets(tmp_path / "t.npz", mean, rows, cols, ["m1", "m2"])
    teacher = TeacherTargets(tmp_path / "t.npz", ["a3", "a1"], ["c0", "c5", "c2"])
    block = teacher.block(np.array([0, 1]), np.array([2, 0]))
    np.testing.assert_allclose(block.numpy(), mean[np.ix_([3, 1], [2, 0])])


def test_targets_refuse_unknown_clips(tmp_path):
    save_targets(tmp_path / "t.npz", np.zeros((1, 1), np.float32), ["a"], ["c"], ["m"])
    with pytest.raises(KeyError, match="no estimates"):
        TeacherTargets(tmp_path / "t.npz", ["a", "b"], ["c"])
