"""Demo encoders keep the token/weights contract; the snippet wrapper averages snippet embeddings."""

import pytest
import torch

from salsa2.model.encoders import AUDIO_ENCODERS
from salsa2.model.encoders.base import AudioEncoder, SnippetEncoder, weighted_mean
from salsa2.audio.frontends import FrontendConfig

FE = FrontendConfig()


@pytest.mark.parametrize("arch", ["small_mobilenet1d", "small_mobilenet2d", "small_transformer"])
def test_contract_shapes_and_padding_weights(arch):
    torch.manual_seed(0)
    enc = AUDIO_ENCODERS.build(arch, frontend=FE).eval()
    mel = torch.randn(3, 64, 2560)
    lengths = torch.tensor([2560, 700, 90])
    tokens, weights = enc(mel, lengths)
    assert tokens.shape[0] == 3 and tokens.shape[2] == enc.out_dim and weights.shape == tokens.shape[:2]
    assert (weights >= 0).all() and (weights.sum(1) > 0).all()
    # The short clip has fewer pooled tokens than the long one.
    assert (weights[2] > 0).sum() < (weights[0] > 0).sum()


def test_transformer_embedding_ignores_batch_padding():
    torch.manual_seed(0)
    enc = AUDIO_ENCODERS.build("small_transformer", frontend=FE).eval()
    clip = torch.randn(1, 64, 1300)
    alone = weighted_mean(*enc(clip, torch.tensor([1300])))
    padded = torch.cat([clip, torch.zeros(1, 64, 1260)], dim=2)
    batch = torch.cat([padded, torch.randn(1, 64, 2560)])
    together = weighted_mean(*enc(batch, torch.tensor([1300, 2560])))[:1]
    torch.testing.assert_close(alone, together, atol=1e-5, rtol=1e-4)


class _MeanBackbone(AudioEncoder):
    """Token t = mean mel value of frame t (so snippet means are easy to compute by hand)."""

    frontend = FE
    out_dim = 1

    def forward(self, mel, lengths):
        tokens = mel.mean(1, keepdim=True).transpose(1, 2)
        weights = (torch.arange(mel.shape[2])[None] < lengths[:, None]).float()
        return tokens, weights


def test_snippets_are_averaged_with_equal_weight():
    enc = SnippetEncoder(_MeanBackbone(), snippet_frames=10, min_snippet_frames=3)
    mel = torch.zeros(1, 64, 25)
    mel[:, :, :10] = 1.0  # snippet 1: mean 1
    mel[:, :, 10:20] = 4.0  # snippet 2: mean 4
    mel[:, :, 20:25] = 10.0  # snippet 3 (5 frames): mean 10
    emb = weighted_mean(*enc(mel, torch.tensor([25])))
    assert emb.item() == pytest.approx((1 + 4 + 10) / 3)
    # A trailing snippet shorter than min_snippet_frames is dropped.
    emb = weighted_mean(*enc(mel, torch.tensor([22])))
    assert emb.item() == pytest.approx((1 + 4) / 2)
