"""Gradient accumulation steps the optimizer once per k batches; precision settings fail clearly where invalid."""

from __future__ import annotations

import pytest
import torch

from salsa2.training.amp import MixedPrecision
from salsa2.config.params import TrainParams
from salsa2.training.distributed import DistContext
from salsa2.training.losses import LOSSES
from salsa2.training.resume import ResumeState
from salsa2.training.loop import fit
from helpers.tiny import tiny_data, tiny_model


def _optimizer_steps(tmp_path, **cfg) -> int:
    train, store = tiny_data(20, seed=0)  # batch 6 -> 4 batches an epoch
    val, _ = tiny_data(6, seed=0)
    ckpt = ResumeState("acc", "k", tmp_path / str(sorted(cfg.items())))
    fit(tiny_model(), LOSSES.build("nt_xent"), train, val,
        TrainParams(epochs=1, batch_size=6, device="cpu", **cfg), audio_lr=1e-3, text_lr=0.0,
        text_features=store, checkpointer=ckpt, dist=DistContext())
    state = torch.load(ckpt.path, weights_only=False)["optimizer"]["state"]
    return int(next(iter(state.values()))["step"])


def test_accumulation_steps_once_per_k_batches(tmp_path):
    assert _optimizer_steps(tmp_path) == 4
    assert _optimizer_steps(tmp_path, accumulate=2) == 2
    assert _optimizer_steps(tmp_path, accumulate=3) == 2  # 3 + the last, partial group of 1


def test_bf16_autocast_trains_on_cpu(tmp_path):
    assert _optimizer_steps(tmp_path, precision="bf16") == 4


def test_precision_errors_are_clear():
    with pytest.raises(ValueError, match="fp16 needs a CUDA device"):
        MixedPrecision("fp16", torch.device("cpu"))
    with pytest.raises(ValueError, match="precision must be one of"):
        MixedPrecision("fp8", torch.device("cpu"))
    with MixedPrecision("bf16", torch.device("cpu")).autocast():
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.bfloat16
