"""Demo encoders keep the token/weights contract; the snippet wrapper averages snippet embeddings; the channels-last
CNN computes the 1D CNN; the demo transformer has no dropout."""

import pytest
import torch

from salsa2.model.encoders import AUDIO_ENCODERS
from salsa2.model.encoders.base import AudioEncoder, SnippetEncoder, weighted_mean
from salsa2.audio.frontends import FrontendConfig
from helpers import REPO

FE = FrontendConfig()
MEL64 = FrontendConfig(n_mels=64, f_max=8000.0)


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


@pytest.mark.parametrize("train_mode", [False, True])
def test_channels_last_cnn_computes_the_1d_cnn(train_mode):
    torch.manual_seed(0)
    plain = AUDIO_ENCODERS.build("small_mobilenet1d", frontend=MEL64, width=0.5, out_dim=32)
    fast = AUDIO_ENCODERS.build("small_mobilenet1d", frontend=MEL64, width=0.5, out_dim=32, channels_last=True)
    fast.load_state_dict(plain.state_dict())  # a checkpoint of the 1D variant loads
    plain.train(train_mode)
    fast.train(train_mode)
    mel = torch.randn(4, 64, 250) - 4.5
    lengths = torch.tensor([250, 200, 97, 31])
    (a, wa), (b, wb) = plain(mel, lengths), fast(mel, lengths)
    assert a.shape == b.shape == (4, 16, 32)
    assert torch.equal(wa, wb)
    torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)


def test_channels_last_is_only_for_the_1d_cnn():
    from salsa2.model.encoders.small_cnn import SmallMobileNet

    with pytest.raises(ValueError, match="channels_last"):
        SmallMobileNet(MEL64, dims=2, channels_last=True)


def test_demo_transformer_has_no_dropout():
    from salsa2.config.params import load_params

    kwargs = load_params(REPO / "params.yaml")["audio_encoders"]["transformer"]["kwargs"]
    enc = AUDIO_ENCODERS.build("small_transformer", frontend=MEL64, **kwargs)
    rates = [m.p for m in enc.modules() if isinstance(m, torch.nn.Dropout)]
    assert rates and all(p == 0.0 for p in rates)
