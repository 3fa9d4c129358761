"""Text-aware attention pooling (Tymofieiev 2025, sec. 3.6) and the DualEncoder similarity it feeds."""

import torch
import torch.nn.functional as F

from salsa2.model.pooling import TextAwarePooling


def _inputs(seed=0, a=3, s=5, t=4, d=8):
    g = torch.Generator().manual_seed(seed)
    tokens = torch.randn(a, s, d, generator=g)
    weights = torch.ones(a, s)
    weights[1, 3:] = 0  # clip 1 has 3 valid tokens
    return tokens, weights, torch.randn(t, d, generator=g)


def _tap(seed=0, d=8, p=16, dropout=0.0):
    torch.manual_seed(seed)
    tap = TextAwarePooling(d, proj_dim=p, dropout=dropout)
    for m in (tap.q, tap.k, tap.v, tap.o):  # non-zero biases, so the factorisation is really tested
        torch.nn.init.normal_(m.bias)
    return tap


def test_factored_pooling_equals_the_formula():
    tokens, weights, text = _inputs()
    tap = _tap().eval()
    torch.testing.assert_close(tap.pool(tokens, weights, text), tap.reference_pool(tokens, weights, text))


def test_factored_pooling_equals_the_formula_under_dropout():
    tokens, weights, text = _inputs(1)
    tap = _tap(1, dropout=0.5).train()
    torch.manual_seed(3)
    fast = tap.pool(tokens, weights, text)
    torch.manual_seed(3)
    slow = tap.reference_pool(tokens, weights, text)
    torch.testing.assert_close(fast, slow)


def test_padding_tokens_are_ignored():
    tokens, weights, text = _inputs(2)
    tap = _tap(2).eval()
    changed = tokens.clone()
    changed[1, 3:] = 100.0  # padding of clip 1
    torch.testing.assert_close(tap.pool(changed, weights, text), tap.pool(tokens, weights, text))


def test_single_token_pools_to_its_value_projection():
    tokens, _, text = _inputs(3, s=1)
    tap = _tap(3).eval()
    expected = tap.norm_out(tap.o(tap.v(tap.norm_audio(tokens[:, 0]))))  # attention over one token is 1
    torch.testing.assert_close(tap.pool(tokens, torch.ones(3, 1), text), expected[None].expand(4, -1, -1))


def test_blocked_similarity_is_the_cosine_of_every_pair():
    tokens, weights, text = _inputs(4, t=7)
    tap = _tap(4).eval()
    sim = tap.similarity(tokens, weights, text, block=3)
    assert sim.shape == (3, 7)
    for j in range(7):
        z = tap.reference_pool(tokens, weights, text[j : j + 1])[0]  # (A, D)
        torch.testing.assert_close(sim[:, j], F.cosine_similarity(z, text[j][None], dim=-1))
    # the clip's embedding depends on the caption
    z = tap.pool(tokens, weights, text)
    assert not torch.allclose(z[0, 0], z[1, 0])


class _StubText(torch.nn.Module):
    out_dim = 6
    frozen = True


def _model(pooling):
    from salsa2.audio.frontends import FrontendConfig
    from salsa2.model.dual_encoder import DualEncoder, ModelConfig

    torch.manual_seed(0)
    cfg = ModelConfig("small_mobilenet1d", FrontendConfig(), embed_dim=8, audio_kwargs={"out_dim": 16},
                      pooling=pooling, pooling_kwargs={"proj_dim": 12} if pooling == "tap" else {})
    return DualEncoder(cfg, text_encoder=_StubText()).eval()


def test_dual_encoder_similarity_mean_and_tap():
    g = torch.Generator().manual_seed(1)
    mel, lengths = torch.randn(3, 64, 256, generator=g), torch.tensor([256, 200, 90])
    text = F.normalize(torch.randn(5, 8, generator=g), dim=-1)
    with torch.no_grad():
        mean = _model("mean")
        torch.testing.assert_close(mean.similarity(mean.encode_audio_side(mel, lengths), text),
                                   mean.encode_audio(mel, lengths) @ text.T)
        tap = _model("tap")
        tokens, weights = tap.audio_tokens(mel, lengths)
        torch.testing.assert_close(tap.similarity(tap.encode_audio_side(mel, lengths), text),
                                   tap.tap.similarity(tokens, weights, text))
    assert tap.cfg.to_dict()["pooling"] == "tap"
