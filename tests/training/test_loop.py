"""The training loop (salsa2.training.loop): LR schedule, gradient accumulation, validation every k epochs and the
best epoch kept, the trained state, and a model trained on the tiny demo that beats chance and reloads identically."""

import numpy as np
import pytest
import torch

from salsa2.model.checkpoint import load_checkpoint
from salsa2.features.splits import load_split
from salsa2.evaluation.embed import embed_split_audio, embed_captions
from salsa2.evaluation.metrics import bidirectional_metrics
from salsa2.features.text_cache import TextFeatureStore
from salsa2.config.params import TrainParams
from salsa2.training.loop import fit, load_trained_state, lr_factor, trained_state, validates
from helpers.tiny import optimizer_steps, tiny_data, tiny_model


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


def test_validates_every_k_epochs_and_always_the_last():
    assert [e for e in range(10) if validates(e, 10, 2)] == [1, 3, 5, 7, 9]
    assert [e for e in range(5) if validates(e, 5, 2)] == [1, 3, 4]
    assert [e for e in range(3) if validates(e, 3, 1)] == [0, 1, 2]


def test_fit_keeps_the_best_validated_epoch_only():
    train, store = tiny_data(20, seed=0)
    val, _ = tiny_data(8, seed=0)
    model = tiny_model()
    cfg = TrainParams(epochs=5, batch_size=6, lr=3e-3, device="cpu", validate_every=2)
    result = fit(model, _nt_xent(), train, val, cfg, audio_lr=3e-3, text_lr=0.0, text_features=store)
    validated = [r["epoch"] for r in result.history if "val/t2a/mAP@10" in r]
    assert validated == [1, 3, 4]
    assert result.best_epoch in validated
    best = max(r["val/t2a/mAP@10"] for r in result.history if "val/t2a/mAP@10" in r)
    assert result.best_val["t2a/mAP@10"] == best


def test_fit_rejects_validate_every_zero():
    train, store = tiny_data(8, seed=0)
    with pytest.raises(ValueError, match="validate_every"):
        fit(tiny_model(), _nt_xent(), train, train, TrainParams(epochs=1, device="cpu", validate_every=0),
            audio_lr=1e-3, text_lr=0.0, text_features=store)


def _nt_xent():
    from salsa2.training.losses import LOSSES

    return LOSSES.build("nt_xent", tau=0.05)


def test_training_state_of_another_model_is_refused():
    state = trained_state(tiny_model())
    state["audio_proj.extra"] = torch.zeros(1)
    with pytest.raises(RuntimeError, match="unexpected"):
        load_trained_state(tiny_model(), state)
    del state["audio_proj.extra"], state["audio_proj.weight"]
    with pytest.raises(RuntimeError, match="missing"):
        load_trained_state(tiny_model(), state)


def test_accumulation_steps_once_per_k_batches(tmp_path):
    assert optimizer_steps(tmp_path) == 4
    assert optimizer_steps(tmp_path, accumulate=2) == 2
    assert optimizer_steps(tmp_path, accumulate=3) == 2  # 3 + the last, partial group of 1
