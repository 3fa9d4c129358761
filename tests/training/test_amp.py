"""Mixed precision (salsa2.training.amp): auto picks bf16/fp16 on CUDA and fp32 on CPU, bf16 autocast trains on CPU,
invalid settings fail clearly."""

from __future__ import annotations

import pytest
import torch

from salsa2.training.amp import MixedPrecision, resolve_precision
from salsa2.config.params import TrainParams
from helpers.tiny import optimizer_steps


def test_bf16_autocast_trains_on_cpu(tmp_path):
    assert optimizer_steps(tmp_path, precision="bf16") == 4


def test_precision_errors_are_clear():
    with pytest.raises(ValueError, match="fp16 needs a CUDA device"):
        MixedPrecision("fp16", torch.device("cpu"))
    with pytest.raises(ValueError, match="precision must be one of"):
        MixedPrecision("fp8", torch.device("cpu"))
    with MixedPrecision("bf16", torch.device("cpu")).autocast():
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.bfloat16


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
