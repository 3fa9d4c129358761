"""Deterministic weights and waveforms shared by tests/fixtures/make_reference_outputs.py and the tests.

Every tensor of a state_dict is drawn from a generator seeded by its key name (crc32), so the reference
networks and salsa2's, whose keys coincide, get identical values without exchanging files. Scales keep
deep random networks numerically alive and input-sensitive: fan-in scaled weights (He scale for
convolutions), norm weights near 1, BatchNorm running variances in [0.5, 1.5].
"""

from __future__ import annotations

import math
import zlib

import numpy as np
import torch
from torch import nn

RATE = 32000  # the authors' audio rate
SECONDS = (5.0, 10.0, 12.0, 25.0)


def seeded_tensor(key: str, shape: tuple[int, ...]) -> torch.Tensor:
    """The value of state_dict entry ``key`` (float32), a function of the key name and shape only."""
    g = torch.Generator().manual_seed(zlib.crc32(key.encode()))
    name = key.rsplit(".", 1)[-1]
    if name == "running_var":
        return 0.5 + torch.rand(shape, generator=g)
    if name == "running_mean":
        return 0.1 * torch.randn(shape, generator=g)
    if len(shape) <= 1:
        base = 1.0 if name == "weight" else 0.0
        return base + 0.1 * torch.randn(shape, generator=g)
    fan_in = math.prod(shape[1:])
    gain = 2.0 if len(shape) == 4 else 1.0  # convolutions (ReLU/hard-swish CNN): He scale, else 1 / sqrt(fan_in)
    return torch.randn(shape, generator=g) * math.sqrt(gain / max(fan_in, 1))


def fill(module: nn.Module, rename=lambda k: k) -> list[str]:
    """Overwrite every float entry of ``module``'s state_dict with ``seeded_tensor(rename(key))``."""
    state = module.state_dict()
    done = []
    for k, v in state.items():
        if not v.is_floating_point():
            continue
        v.copy_(seeded_tensor(rename(k), tuple(v.shape)).to(v.dtype))
        done.append(rename(k))
    return done


def waveform(seconds: float, rate: int = RATE, seed: int = 0) -> np.ndarray:
    """A mono test signal: tones gliding over the spectrum plus noise, with loud and quiet stretches."""
    rng = np.random.default_rng(seed + int(seconds * 1000))
    n = int(round(seconds * rate))
    t = np.arange(n) / rate
    sweep = np.sin(2 * np.pi * (200.0 * t + 400.0 * t**2 / max(seconds, 1.0)))
    tone = 0.3 * np.sin(2 * np.pi * 1000.0 * t) + 0.2 * sweep
    env = 0.55 + 0.45 * np.sin(2 * np.pi * t / 3.3 + seed)
    noise = 0.05 * rng.standard_normal(n)
    return ((tone + noise) * env).astype(np.float32)
