"""MobileNet in training runs every snippet of the clip completed to ``train_pad_seconds`` (the paper preset: all three
10 s snippets of a 30 s clip, as the authors' zero-padded clips), silent snippets included in BatchNorm's batch
statistics but not in the pooling; evaluation is unchanged.

The reference is written out here without SnippetEncoder: each clip completed with the log-mel of silence to
``K`` snippets, all ``B * K`` snippets through the backbone in one batch (OptimusPrimus/salsa ``WindowedPrediction``
on 30 s clips), each snippet's global mean, the clip the mean over its snippets that hold audio (``forward_audio``'s
``audio_mask``). Snippets are shortened (0.64 s) to keep the full-width network cheap on a CPU.
"""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import nn

from salsa2.model.encoders import AUDIO_ENCODERS
from salsa2.model.encoders.base import SnippetEncoder, weighted_mean
from helpers.paper import KALDI128, PRESET

SNIPPET_SECONDS = 0.64  # 64 frames, two MobileNet tokens
K = 3  # snippets of the padded clip, as 30 s / 10 s in the paper preset
TOL = 64 * torch.finfo(torch.float32).eps
AUDIO_FRAMES = (170, 40, 100)  # 3, 1 and 2 snippets hold audio (each last one >= 32 frames: pooled)


def _mn(train_pad_seconds: float) -> SnippetEncoder:
    """The preset's MobileNet (random weights, short snippets) with ``train_pad_seconds``."""
    kwargs = {**PRESET["audio_encoders"]["mn"]["kwargs"], "weights": "none", "snippet_seconds": SNIPPET_SECONDS,
              "train_pad_seconds": train_pad_seconds}
    torch.manual_seed(0)
    return AUDIO_ENCODERS.build(PRESET["audio_encoders"]["mn"]["arch"], frontend=KALDI128, **kwargs)


@pytest.fixture(scope="module")
def built() -> SnippetEncoder:
    return _mn(K * SNIPPET_SECONDS)  # building initialises ~46 M parameters: once


@pytest.fixture
def enc(built) -> SnippetEncoder:
    return copy.deepcopy(built)


def _switched_off(enc: SnippetEncoder) -> SnippetEncoder:
    off = copy.deepcopy(enc)
    off.train_pad_frames = 0
    return off


def _batch() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    lengths = torch.tensor(AUDIO_FRAMES) + KALDI128.tail_frames
    return torch.randn(len(lengths), KALDI128.n_mels, 256, generator=g) - 4.0, lengths  # padded wider than any clip


def _reference(backbone: nn.Module, mel: torch.Tensor, lengths: torch.Tensor, frames: int) -> torch.Tensor:
    fill = math.log(KALDI128.log_offset)
    snippets, holds_audio = [], []
    for x, n in zip(mel, lengths.tolist()):
        clip = torch.full((KALDI128.n_mels, K * frames), fill)
        clip[:, :n] = x[:, :n]
        snippets.append(clip.reshape(KALDI128.n_mels, K, frames).permute(1, 0, 2))
        holds_audio.append(torch.arange(K) * frames < n - KALDI128.tail_frames)
    tokens, _ = backbone(torch.cat(snippets), torch.full((len(lengths) * K,), frames))
    per_snippet = tokens.mean(1).reshape(len(lengths), K, -1)
    return torch.stack([s[m].mean(0) for s, m in zip(per_snippet, holds_audio)])


def _batchnorms(module: nn.Module) -> list[nn.BatchNorm2d]:
    return [m for m in module.modules() if isinstance(m, nn.BatchNorm2d)]


def _close(a: torch.Tensor, b: torch.Tensor) -> None:
    torch.testing.assert_close(a, b, rtol=TOL, atol=TOL * float(b.detach().abs().max()))


def test_paper_mobilenet_trains_on_all_snippets_of_the_padded_clip(enc):
    frames = enc.snippet_frames
    assert frames == 64 and enc.train_pad_frames == K * frames
    ref = copy.deepcopy(enc.backbone)
    mel, lengths = _batch()
    enc.train(), ref.train()
    out = weighted_mean(*enc(mel, lengths))
    expected = _reference(ref, mel, lengths, frames)
    _close(out, expected)
    for got, want in zip(_batchnorms(enc.backbone), _batchnorms(ref), strict=True):
        _close(got.running_mean, want.running_mean)
        _close(got.running_var, want.running_var)
    # gradients through the batch statistics: the last block's (the whole backward would be slow on a CPU)
    last = (enc.backbone.features[-1][0].weight, ref.features[-1][0].weight)
    grads = [torch.autograd.grad(o.square().sum(), w)[0] for o, w in zip((out, expected), last)]
    _close(*grads)


def test_without_train_padding_the_silent_snippets_are_not_run_and_statistics_differ(enc):
    off = _switched_off(enc)
    ref = copy.deepcopy(enc.backbone)
    mel, lengths = _batch()
    seen = []
    off.backbone.register_forward_hook(lambda _m, inp, _o: seen.append(inp[0].shape[0]))
    for m in (enc, off, ref):
        m.train()
    with torch.no_grad():
        weighted_mean(*enc(mel, lengths))
        weighted_mean(*off(mel, lengths))
        _reference(ref, mel, lengths, enc.snippet_frames)
    assert seen == [3 + 1 + 2]  # only the snippets with audio, not 3 x 3
    got, want = _batchnorms(off.backbone)[0].running_mean, _batchnorms(ref)[0].running_mean
    assert (got - want).abs().max() > 1e3 * TOL * want.abs().max()
    _close(_batchnorms(enc.backbone)[0].running_mean, want)


def test_train_padding_changes_nothing_in_evaluation(enc):
    off = _switched_off(enc)
    mel, lengths = _batch()
    enc.eval(), off.eval()
    with torch.no_grad():
        a, b = enc(mel, lengths), off(mel, lengths)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_train_padding_is_refused_for_backbones_that_mask_their_padding():
    small = AUDIO_ENCODERS.build("small_transformer", frontend=KALDI128, dim=16, depth=1, heads=2, stack=8)
    with pytest.raises(ValueError, match="train_pad_frames"):
        SnippetEncoder(small.backbone, 1000, train_pad_frames=3000)
    with pytest.raises(ValueError, match="train_pad_seconds"):
        _mn(-1.0)
