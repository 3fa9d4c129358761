"""precision: auto picks bf16/fp16 on CUDA and fp32 on CPU; compile keeps the training result."""

from __future__ import annotations

import torch

from salsa2.training.amp import MixedPrecision, resolve_precision
from salsa2.config.params import TrainParams
from salsa2.training.distributed import DistContext
from salsa2.training.losses import LOSSES
from salsa2.training.loop import fit
from helpers.tiny import tiny_data, tiny_model


def test_auto_precision(monkeypatch):
    cuda = torch.device("cuda", 0)
    assert resolve_precision("auto", torch.device("cpu")) == "fp32"
    assert MixedPrecision("auto", torch.device("cpu")).dtype is None
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: not including_emulation)
    assert resolve_precision("auto", cuda) == "bf16"  # native bf16 (A100, A40, H100)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: including_emulation)
    assert resolve_precision("auto", cuda) == "fp16"  # emulated bf16 only (V100, T4): fp16 with a GradScaler
    assert resolve_precision("bf16", torch.device("cpu")) == "bf16"
    assert TrainParams().precision == "auto"


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
