"""Resume with augmentation is bit-identical: the Mixco and text-mask generators are saved."""

from __future__ import annotations

import numpy as np
import torch
from helpers.tiny import tiny_data, tiny_model

from salsa2.training.augment import AugmentParams
from salsa2.config.params import TrainParams
from salsa2.training.losses import LOSSES
from salsa2.training.resume import ResumeState
from salsa2.training.loop import BestEpoch, FitResult, TrainState, fit


class Killed(Exception):
    pass


def _fit(ckpt: ResumeState, kill_after: int | None = None) -> tuple[dict, list]:
    train, store = tiny_data(20, seed=0)
    val, _ = tiny_data(8, seed=0)
    cfg = TrainParams(epochs=3, batch_size=6, lr=3e-3, warmup_epochs=0.5, max_seconds=1.0, device="cpu")
    model = tiny_model(dropout=0.1)

    def on_epoch(epoch: int, record: dict) -> None:  # called after the epoch's state is saved
        if epoch == kill_after:
            raise Killed

    result = fit(model, LOSSES.build("nt_xent"), train, val, cfg, audio_lr=1e-3, text_lr=0.0, text_features=store,
                 seed=0, checkpointer=ckpt, augment=AugmentParams(mixco=True), on_epoch=on_epoch)
    return model.state_dict(), [r["train/loss"] for r in result.history]


def test_resume_with_mixco_is_bit_identical(tmp_path):
    torch.set_num_threads(1)
    straight, losses = _fit(ResumeState("a", "k", tmp_path))
    try:
        _fit(ResumeState("b", "k", tmp_path), kill_after=1)
    except Killed:
        pass
    resumed, resumed_losses = _fit(ResumeState("b", "k", tmp_path))  # resumes at epoch 2
    assert resumed_losses == losses
    for k in straight:
        assert torch.equal(straight[k], resumed[k]), k


def test_augmentation_generators_round_trip_through_the_resume_state():
    model = tiny_model()
    loss = LOSSES.build("nt_xent")
    opt = torch.optim.Adam(model.parameters())
    from salsa2.training.amp import MixedPrecision

    amp = MixedPrecision("fp32", torch.device("cpu"))
    rng, aug_rng, aug_gen = np.random.default_rng(0), np.random.default_rng(1), torch.Generator().manual_seed(2)
    aug_rng.random(5)
    torch.rand(3, generator=aug_gen)
    saved = TrainState(1, BestEpoch(FitResult(0, {}))).to_dict(model, loss, opt, amp, rng, aug_rng, aug_gen)
    expect_np, expect_t = aug_rng.random(4), torch.rand(4, generator=aug_gen)
    fresh_rng, fresh_gen = np.random.default_rng(1), torch.Generator().manual_seed(2)
    TrainState.restore(saved, model, loss, opt, amp, np.random.default_rng(0), fresh_rng, fresh_gen)
    np.testing.assert_array_equal(fresh_rng.random(4), expect_np)
    assert torch.equal(torch.rand(4, generator=fresh_gen), expect_t)
