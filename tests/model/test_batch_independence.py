"""A clip's embedding never depends on its batch, for every audio encoder.

Each encoder (random weights, ``weights: none``) embeds a short, a 10 s and a long clip alone (input exactly
as long as the clip) and inside batches of other clips padded wider (as ``collate_mels`` pads to a multiple
of 128 frames, and wider): the pooled embeddings agree to 1e-4 (max abs diff, on embeddings scaled so
that the lone clip's largest entry is 1: untrained small CNNs output ~1e-8). Inputs are log-mels of random noise bursts
(so the per-clip maxima, silences and snippet tails all matter), not constants.
"""

from __future__ import annotations

import pytest
import torch
import yaml

from salsa2.model.encoders import AUDIO_ENCODERS
from salsa2.model.encoders.base import weighted_mean
from salsa2.audio.frontends import FrontendConfig
from helpers import REPO
from helpers.paper import KALDI128, MEL64_ATST

DEMO = FrontendConfig(**yaml.safe_load((REPO / "params.yaml").read_text())["frontends"]["mel64"])
DEMO_ENCODERS = yaml.safe_load((REPO / "params.yaml").read_text())["audio_encoders"]


def mel_clip(cfg: FrontendConfig, seconds: float, seed: int) -> torch.Tensor:
    """(n_mels, T) log-mel-like values: noise with loud and quiet stretches."""
    g = torch.Generator().manual_seed(seed)
    t = cfg.num_frames(int(seconds * cfg.sample_rate))
    level = torch.rand(1, t, generator=g) * 8.0 - 10.0
    return (torch.randn(cfg.n_mels, t, generator=g) + level).float()


def pad_batch(mels: list[torch.Tensor], extra: int) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = torch.tensor([m.shape[1] for m in mels])
    out = torch.full((len(mels), mels[0].shape[0], int(lengths.max()) + extra), 3.0)  # garbage, not silence
    for i, m in enumerate(mels):
        out[i, :, : m.shape[1]] = m
    return out, lengths


def check(enc, cfg: FrontendConfig, seconds=(3.0, 10.0, 23.0)) -> None:
    enc.eval()
    clips = [mel_clip(cfg, s, i) for i, s in enumerate(seconds)]
    others = [mel_clip(cfg, s, 10 + i) for i, s in enumerate((1.5, 12.5))]
    with torch.no_grad():
        alone = [weighted_mean(*enc(m[None], torch.tensor([m.shape[1]])))[0] for m in clips]
        mixed, lengths = pad_batch(others[:1] + clips + others[1:], extra=200)
        batched = weighted_mean(*enc(mixed, lengths))[1 : 1 + len(clips)]
        small, lengths = pad_batch(clips[:1] + others[:1], extra=128 - clips[0].shape[1] % 128)
        short_batched = weighted_mean(*enc(small, lengths))[0]
    scale = [float(a.abs().max()) for a in alone]
    assert min(scale) > 0
    for i, s in enumerate(seconds):
        diff = float((alone[i] - batched[i]).abs().max()) / scale[i]
        assert diff <= 1e-4, f"{s} s clip: max |alone - batched| = {diff}"
    assert float((alone[0] - short_batched).abs().max()) / scale[0] <= 1e-4
    assert not torch.allclose(alone[0] / scale[0], alone[1] / scale[1], atol=1e-3)  # the clips do differ


@pytest.mark.parametrize("name", sorted(DEMO_ENCODERS))
def test_demo_encoders_batch_independent(name):
    spec = DEMO_ENCODERS[name]
    torch.manual_seed(0)
    check(AUDIO_ENCODERS.build(spec["arch"], frontend=DEMO, **spec.get("kwargs", {})), DEMO)


def test_small_mobilenet2d_and_concat_batch_independent():
    torch.manual_seed(0)
    check(AUDIO_ENCODERS.build("small_mobilenet2d", frontend=DEMO), DEMO)
    parts = [{"arch": "small_mobilenet1d"}, {"arch": "small_transformer", "kwargs": {"dim": 64, "depth": 1}}]
    check(AUDIO_ENCODERS.build("concat", frontend=DEMO, parts=parts), DEMO)


@pytest.mark.slow  # full-size networks: ~15-70 s each on two CPU cores
@pytest.mark.parametrize("arch,cfg", [("passt", KALDI128), ("atst_frame", MEL64_ATST), ("mn40_as_ext", KALDI128)])
def test_paper_encoders_batch_independent(arch, cfg):
    torch.manual_seed(0)
    check(AUDIO_ENCODERS.build(arch, frontend=cfg, weights="none"), cfg, seconds=(3.0, 10.0, 15.0))
