"""``compile`` (torch.compile of the encoders) keeps the training result and the checkpoint keys."""

from __future__ import annotations

import torch

from salsa2.config.params import TrainParams
from salsa2.training.distributed import DistContext
from salsa2.training.losses import LOSSES
from salsa2.training.loop import fit
from helpers.tiny import tiny_data, tiny_model


def test_compiled_encoders_train_like_eager():
    train, store = tiny_data(12, seed=0)
    val, _ = tiny_data(6, seed=0)
    weights = []
    for backend in ("none", "eager"):  # eager: dynamo traces and runs the captured graphs without codegen
        model = tiny_model()
        fit(model, LOSSES.build("nt_xent"), train, val,
            TrainParams(epochs=1, batch_size=6, device="cpu", resume=False, compile=backend), audio_lr=1e-3,
            text_lr=0.0, text_features=store, dist=DistContext())
        weights.append(model.state_dict())
    assert weights[0].keys() == weights[1].keys()  # compiling in place leaves the checkpoint keys alone
    for key in weights[0]:
        torch.testing.assert_close(weights[1][key], weights[0][key], atol=1e-6, rtol=1e-5, msg=key)
