"""The audio-encoder contract and the backbone-agnostic snippet wrapper.

Every audio encoder maps a batch of log-mel spectrograms to a sequence of embeddings with pooling weights:

    forward(mel: (B, n_mels, T) float, lengths: (B,) long) -> (tokens: (B, S, out_dim), weights: (B, S) float)

``weights`` are >= 0 and zero on padding. Mean pooling is ``sum(w * tokens) / sum(w)``; attention pooling
(TAP) attends over the tokens with ``weights > 0``. Encoders declare the frontend they consume
(``frontend``) and their width (``out_dim``).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from salsa2.frontends import FrontendConfig


class AudioEncoder(nn.Module):
    """Base class: subclasses set ``frontend`` and ``out_dim`` and implement ``forward``."""

    frontend: FrontendConfig
    out_dim: int

    def forward(self, mel: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError


def lengths_to_mask(lengths: torch.Tensor, size: int) -> torch.Tensor:
    """(B,) lengths -> (B, size) bool mask, True on valid positions."""
    return torch.arange(size, device=lengths.device)[None, :] < lengths[:, None]


def downsample_lengths(lengths: torch.Tensor, factor: int) -> torch.Tensor:
    """Valid length after a stride-``factor`` reduction (ceil), at least 1."""
    return torch.clamp((lengths + factor - 1) // factor, min=1)


def weighted_mean(tokens: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """(B, S, D), (B, S) -> (B, D): the pooling every encoder's weights are defined for."""
    w = weights.to(tokens.dtype)
    return (tokens * w[..., None]).sum(1) / w.sum(1, keepdim=True).clamp_min(1e-12)


class SnippetEncoder(AudioEncoder):
    """Runs a fixed-context backbone on non-overlapping snippets and averages the snippet embeddings.

    Seed 002 (4.2.1): PaSST and ATST have positional encodings for at most 10 s, so inputs are cut into
    non-overlapping 10 s snippets whose embeddings are averaged. The wrapper concatenates the snippets'
    tokens and scales each snippet's pooling weights to sum to one, so ``weighted_mean`` over the output is
    exactly the average of per-snippet mean embeddings (a partial last snippet counts as one snippet).
    """

    def __init__(self, backbone: AudioEncoder, snippet_frames: int, min_snippet_frames: int = 1) -> None:
        super().__init__()
        self.backbone = backbone
        self.frontend = backbone.frontend
        self.out_dim = backbone.out_dim
        self.snippet_frames = snippet_frames
        self.min_snippet_frames = min_snippet_frames
        self.pad_multiple = getattr(backbone, "pad_multiple", None)  # snippets are padded here; only tokens count

    def forward(self, mel: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b, m, t = mel.shape
        n = max(1, math.ceil(t / self.snippet_frames))
        pad = n * self.snippet_frames - t
        if pad:
            mel = nn.functional.pad(mel, (0, pad))
        snippets = mel.reshape(b, m, n, self.snippet_frames).permute(0, 2, 1, 3).reshape(b * n, m, -1)
        starts = torch.arange(n, device=lengths.device) * self.snippet_frames
        snip_len = (lengths[:, None] - starts[None, :]).clamp(0, self.snippet_frames)  # (B, n)
        # A snippet with fewer than min_snippet_frames valid frames is dropped, unless it is the first one.
        keep = (snip_len >= self.min_snippet_frames) | (starts[None, :] == 0)
        snip_len = torch.where(keep, snip_len.clamp_min(1), torch.zeros_like(snip_len))
        flat_len = snip_len.reshape(-1)
        valid = flat_len > 0
        tokens, weights = self.backbone(snippets[valid], flat_len[valid])
        s, d = tokens.shape[1], tokens.shape[2]
        all_tokens = tokens.new_zeros(b * n, s, d)
        all_weights = weights.new_zeros(b * n, s)
        all_tokens[valid] = tokens
        all_weights[valid] = weights / weights.sum(1, keepdim=True).clamp_min(1e-12)
        return all_tokens.reshape(b, n * s, d), all_weights.reshape(b, n * s)
