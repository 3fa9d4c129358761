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

from salsa2.audio.frontends import FrontendConfig


class AudioEncoder(nn.Module):
    """Base class: subclasses set ``frontend`` and ``out_dim`` and implement ``forward``.

    ``padding_is_masked``: frames past ``lengths`` reach no valid output token (attention masks them as keys,
    every other operation is per token), so ``SnippetEncoder`` may crop them away; False for backbones that
    see a whole fixed-length snippet, fill included (PaSST, MobileNet, ATST: the authors' behaviour).
    """

    frontend: FrontendConfig
    out_dim: int
    padding_is_masked: bool = False

    def forward(self, mel: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def pad_value(self, mel: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """What frames past a clip's end hold (in ``mel``'s domain): the log-mel of digital silence."""
        return mel.new_tensor(math.log(self.frontend.log_offset))


CROP_FRAMES = 32  # SnippetEncoder crops in steps of this many frames: few distinct shapes (steady allocator)


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
    """Runs a fixed-context backbone on non-overlapping snippets and pools the snippet outputs.

    Primus et al. 2024 (sec. 4.2.1): PaSST and ATST have positional encodings for at most 10 s, so inputs are cut into
    non-overlapping 10 s snippets whose embeddings are averaged; the authors' code (OptimusPrimus/salsa
    ``models/audio/base.py`` ``WindowedPrediction``) runs every encoder, MobileNet included, this way on
    waveforms zero-padded to whole snippets.

    A clip of L frames gives ceil(L / snippet_frames) snippets (a last one with fewer than
    ``min_snippet_frames`` valid frames is dropped unless it is the first). Before splitting, the backbone's
    ``prepare(mel, lengths) -> (input, fill)`` (if any) maps the whole clip to the backbone's input domain (e.g.
    ATST's dB scale with the clip's maximum) and every frame past the clip's end gets ``fill``, else
    ``backbone.pad_value(mel, lengths)`` (the log-mel of silence), so each snippet the backbone sees is exactly
    ``snippet_frames`` long and holds the same values whatever else is in the batch: a clip's output never
    depends on its batch. With a frontend's
    ``frames_past_end``, the clip's last ``tail_frames`` frames are kept as content but not counted as audio
    (snippet count, valid lengths passed to the backbone).

    ``pool``: ``snippet`` scales each snippet's pooling weights to sum to one, so ``weighted_mean`` over the
    output is the average of per-snippet means (PaSST, MobileNet: one embedding per snippet in the
    reference); ``token`` keeps the backbone's weights, i.e. the mean over all valid tokens of the clip
    (ATST in the reference: one mask over all snippets' frame tokens).

    ``train_pad_frames`` > 0: in training mode every clip is completed with silence to at least this many
    frames and each of those snippets runs through the backbone, silent ones included; the silent snippets'
    outputs get pooling weight 0 (their tokens are zero), so they change only what depends on the whole
    backbone batch: BatchNorm's batch statistics, its running statistics and through them the gradients. This
    is the authors' MobileNet in training (OptimusPrimus/salsa: every clip zero-padded to 30 s,
    ``set_fixed_length(30)``, all three 10 s snippets through ``WindowedPrediction``, silent snippets masked
    out of the pooling in ``forward_audio``). In evaluation mode running statistics are used, a silent
    snippet changes no other output, and only the snippets with audio run. 0: only those, in training too.
    """

    def __init__(self, backbone: AudioEncoder, snippet_frames: int, min_snippet_frames: int = 1,
                 pool: str = "snippet", train_pad_frames: int = 0) -> None:
        super().__init__()
        if pool not in ("snippet", "token"):
            raise ValueError(f"pool must be 'snippet' or 'token', got {pool!r}")
        if train_pad_frames < 0 or (train_pad_frames and backbone.padding_is_masked):
            raise ValueError(f"train_pad_frames must be 0, or > 0 for a backbone that sees whole snippets "
                             f"(padding_is_masked false), got {train_pad_frames}")
        self.backbone = backbone
        self.frontend = backbone.frontend
        self.out_dim = backbone.out_dim
        self.snippet_frames = snippet_frames
        self.min_snippet_frames = min_snippet_frames
        self.pad_multiple = getattr(backbone, "pad_multiple", None)  # snippets are padded here; only tokens count
        self.pool = pool
        self.train_pad_frames = train_pad_frames

    def forward(self, mel: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b, m, t = mel.shape
        silent = math.ceil(self.train_pad_frames / self.snippet_frames) if self.training else 0  # run regardless
        n = max(1, math.ceil(t / self.snippet_frames), silent)
        pad = n * self.snippet_frames - t
        if pad:
            mel = nn.functional.pad(mel, (0, pad))
        prepare = getattr(self.backbone, "prepare", None)
        if prepare is not None:
            mel, fill = prepare(mel, lengths)
        else:
            fill = self.backbone.pad_value(mel, lengths)
        valid = lengths_to_mask(lengths, mel.shape[-1])[:, None, :]
        mel = torch.where(valid, mel, fill.to(mel.dtype))
        snippets = mel.reshape(b, m, n, self.snippet_frames).permute(0, 2, 1, 3).reshape(b * n, m, -1)
        starts = torch.arange(n, device=lengths.device) * self.snippet_frames
        audio = (lengths - self.frontend.tail_frames).clamp_min(1)  # frames of audio (tail frames are content only)
        snip_len = (audio[:, None] - starts[None, :]).clamp(0, self.snippet_frames)  # (B, n)
        keep = (snip_len >= self.min_snippet_frames) | (starts[None, :] == 0)
        snip_len = torch.where(keep, snip_len.clamp_min(1), torch.zeros_like(snip_len))
        flat_len = snip_len.reshape(-1)
        used = flat_len > 0
        run = used | (torch.arange(n, device=used.device) < silent).repeat(b)
        tokens, weights = self._backbone(snippets[run], flat_len[run].clamp_min(1))
        s, d = tokens.shape[1], tokens.shape[2]
        if self.pool == "snippet":
            weights = weights / weights.sum(1, keepdim=True).clamp_min(1e-12)
        if silent:  # silent snippets ran for the batch statistics only: never pooled
            pooled = used[run]
            tokens = torch.where(pooled[:, None, None], tokens, torch.zeros_like(tokens))
            weights = torch.where(pooled[:, None], weights, torch.zeros_like(weights))
        all_tokens = tokens.new_zeros(b * n, s, d)
        all_weights = weights.new_zeros(b * n, s)
        all_tokens[run] = tokens
        all_weights[run] = weights
        return all_tokens.reshape(b, n * s, d), all_weights.reshape(b, n * s)

    def _backbone(self, snippets: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The backbone on (N, n_mels, snippet_frames) snippets. When its padding is masked, the partly filled
        snippets (a clip's last) run cropped to their longest valid length, in CROP_FRAMES steps: the same
        valid tokens for less work (a 12 s clip costs 12 s, not 20 s); their tokens are zero-padded back."""
        partial = lengths < self.snippet_frames
        width = -(-int(lengths[partial].max()) // CROP_FRAMES) * CROP_FRAMES if partial.any() else 0
        if not self.backbone.padding_is_masked or not 0 < width < self.snippet_frames:
            return self.backbone(snippets, lengths)
        if partial.all():
            return self.backbone(snippets[..., :width], lengths)
        full_tokens, full_weights = self.backbone(snippets[~partial], lengths[~partial])
        part_tokens, part_weights = self.backbone(snippets[partial][..., :width], lengths[partial])
        extra = full_tokens.shape[1] - part_tokens.shape[1]
        tokens = full_tokens.new_zeros(len(lengths), *full_tokens.shape[1:])
        weights = full_weights.new_zeros(len(lengths), full_weights.shape[1])
        tokens[~partial], weights[~partial] = full_tokens, full_weights
        tokens[partial] = nn.functional.pad(part_tokens, (0, 0, 0, extra))
        weights[partial] = nn.functional.pad(part_weights, (0, extra))
        return tokens, weights
