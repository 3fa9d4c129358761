"""A small frame-level spectrogram transformer for the demo (ATST-Frame's design at toy size).

Consecutive frames are stacked and projected to one token (four in ATST-Frame, eight here for speed), learned positional
embeddings cover ``max_seconds`` of audio, and longer inputs are cut into non-overlapping snippets whose
embeddings are averaged (Primus et al. 2024, 4.2.1) by ``SnippetEncoder``.
"""

from __future__ import annotations

import torch
from torch import nn

from salsa2.model.encoders import AUDIO_ENCODERS
from salsa2.model.encoders.base import AudioEncoder, SnippetEncoder, downsample_lengths, lengths_to_mask
from salsa2.audio.frontends import FrontendConfig


class FrameTransformer(AudioEncoder):
    """Built by ``build_small_transformer``, whose arguments and defaults these are (``max_frames``: frames of one
    snippet)."""

    padding_is_masked = True  # padded tokens are masked keys; patch, FFN and norms work per token

    def __init__(self, frontend: FrontendConfig, dim: int, depth: int, heads: int, stack: int, max_frames: int,
                 dropout: float) -> None:
        super().__init__()
        self.frontend = frontend
        self.out_dim = dim
        self.stack = stack
        self.pad_multiple = stack  # frames per token
        self.max_tokens = -(-max_frames // stack)
        self.patch = nn.Linear(frontend.n_mels * stack, dim)
        self.pos = nn.Parameter(torch.zeros(1, self.max_tokens, dim))
        nn.init.trunc_normal_(self.pos, std=0.02)
        layer = nn.TransformerEncoderLayer(
            dim, heads, dim_feedforward=2 * dim, dropout=dropout, batch_first=True, norm_first=True,
            activation="gelu",
        )
        self.encoder = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)

    def forward(self, mel: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b, m, t = mel.shape
        pad = (-t) % self.stack
        x = (mel - self.frontend.norm_mean) / self.frontend.norm_std
        x = nn.functional.pad(x, (0, pad))
        n = x.shape[-1] // self.stack
        if n > self.max_tokens:
            raise ValueError(f"input of {t} frames exceeds the positional range; wrap in SnippetEncoder")
        x = x.reshape(b, m, n, self.stack).permute(0, 2, 3, 1).reshape(b, n, self.stack * m)
        x = self.patch(x) + self.pos[:, :n]
        tok_len = downsample_lengths(lengths, self.stack).clamp_max(n)
        mask = lengths_to_mask(tok_len, n)
        x = self.norm(self.encoder(x, src_key_padding_mask=~mask))
        return x, mask.float()


@AUDIO_ENCODERS.register("small_transformer")
def build_small_transformer(
    frontend: FrontendConfig,
    dim: int = 128,
    depth: int = 2,
    heads: int = 4,
    stack: int = 8,
    snippet_seconds: float = 10.0,
    dropout: float = 0.1,
) -> AudioEncoder:
    """``dim``-wide tokens of ``stack`` frames each, ``depth`` layers of ``heads`` heads, positions for
    ``snippet_seconds`` (longer inputs are cut into snippets); ``dropout`` inside the transformer layers (the demo
    sets 0: faster, same quality)."""
    frames = int(round(snippet_seconds * frontend.frames_per_second))
    backbone = FrameTransformer(frontend, dim=dim, depth=depth, heads=heads, stack=stack, max_frames=frames,
                                dropout=dropout)
    return SnippetEncoder(backbone, frames, min_snippet_frames=int(frontend.frames_per_second))
