"""Mixed precision for training: autocast to bf16/fp16 around the encoders, GradScaler for fp16.

``precision`` (``stage1/stage2.precision``): ``fp32`` (default, no autocast), ``bf16`` (autocast, no loss
scaling; works on CPU too, but is only worth it on GPUs with bf16 units) or ``fp16`` (autocast plus dynamic
loss scaling; CUDA only). The similarity and the loss are always computed in fp32 from the embeddings.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable

import torch
from torch import nn

PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


class MixedPrecision:
    """``with amp.autocast(): ...``; ``amp.backward(loss)``; ``amp.step(optimizer, params, clip)``."""

    def __init__(self, precision: str, device: torch.device) -> None:
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {sorted(PRECISIONS)}, got {precision!r}")
        if precision == "fp16" and device.type != "cuda":
            raise ValueError("precision fp16 needs a CUDA device (loss scaling); on CPU use fp32 or bf16")
        self.precision = precision
        self.device = device
        self.dtype = PRECISIONS[precision]
        self.scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def backward(self, loss: torch.Tensor) -> None:
        self.scaler.scale(loss).backward()

    def step(self, optimizer: torch.optim.Optimizer, params: Iterable[nn.Parameter], grad_clip: float) -> None:
        """Unscale (fp16), clip the gradient norm when ``grad_clip`` > 0, step, update the scale."""
        if grad_clip:
            self.scaler.unscale_(optimizer)
            nn.utils.clip_grad_norm_(list(params), grad_clip)
        self.scaler.step(optimizer)
        self.scaler.update()
