"""Mixed precision for training: autocast to bf16/fp16 around the encoders, GradScaler for fp16.

``precision`` (``stage1/stage2.precision``): ``auto`` (default: bf16 on a GPU with bf16 units, fp16 with
loss scaling on an older GPU, fp32 on CPU; ``resolve_precision``), ``fp32`` (no autocast), ``bf16`` (autocast, no loss
scaling; works on CPU too, but is only worth it on GPUs with bf16 units) or ``fp16`` (autocast plus dynamic
loss scaling; CUDA only). The similarity and the loss are always computed in fp32 from the embeddings.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable

import torch
from torch import nn

PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_precision(precision: str, device: torch.device) -> str:
    """``auto`` -> bf16 on CUDA with bf16 support, fp16 on other CUDA devices, fp32 elsewhere; others unchanged."""
    if precision != "auto":
        return precision
    if device.type != "cuda":
        return "fp32"
    return "bf16" if torch.cuda.is_bf16_supported(including_emulation=False) else "fp16"


class MixedPrecision:
    """``with amp.autocast(): ...``; ``amp.backward(loss)``; ``amp.step(optimizer, params, clip)``."""

    def __init__(self, precision: str, device: torch.device) -> None:
        if precision not in (*PRECISIONS, "auto"):
            raise ValueError(f"precision must be one of {sorted(PRECISIONS) + ['auto']}, got {precision!r}")
        precision = resolve_precision(precision, device)
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
