"""The paper's encoders (Primus et al. 2024 4.2.1) at full size with random weights: checkpoint layouts, forwards,
snippets, training-only augmentation, concatenation and the text encoders.

Key/shape fixtures in tests/fixtures were dumped from the reference repositories' own model code
(tests/fixtures/make_key_fixtures.py), not from salsa2's.
"""

from __future__ import annotations

import inspect
import json

import pytest
import torch

from salsa2.model import pretrained
from salsa2.model.encoders import AUDIO_ENCODERS, TEXT_ENCODERS
from salsa2.model.encoders.atst import FREQ_WARP, FrameAST, atst_state_dict, build_atst_frame, frequency_warp
from salsa2.model.encoders.base import SnippetEncoder, weighted_mean
from salsa2.model.encoders.efficientat import MobileNetV3, build_mn40_as_ext
from salsa2.model.encoders.small_cnn import SmallMobileNet, build_small_mobilenet1d, build_small_mobilenet2d
from salsa2.model.encoders.text import HFTextEncoder
from salsa2.audio.frontends import FrontendConfig
from helpers import FIXTURES
from helpers.paper import KALDI128, MEL64_ATST, PRESET


def fixture_keys(name: str) -> list[tuple[str, list[int]]]:
    return [(k, s) for k, s in json.loads((FIXTURES / name).read_text())["keys"]]


def clips(cfg: FrontendConfig, seconds: tuple[float, ...], seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A padded batch of random log-mels of the given durations (frames as the frontend yields them)."""
    g = torch.Generator().manual_seed(seed)
    lengths = torch.tensor([cfg.num_frames(int(s * cfg.sample_rate)) for s in seconds])
    mel = torch.randn(len(seconds), cfg.n_mels, int(lengths.max()), generator=g) - 4.0
    return mel, lengths


# ------------------------------------------------------------------------------------ checkpoint layouts


def test_mn40_state_dict_matches_published_checkpoint_layout():
    model = MobileNetV3(KALDI128, width=4.0, classifier=True)
    assert [(k, list(v.shape)) for k, v in model.state_dict().items()] == fixture_keys("mn40_as_ext_keys.json")
    bare = MobileNetV3(KALDI128, width=4.0)
    ref = [kv for kv in fixture_keys("mn40_as_ext_keys.json") if not kv[0].startswith("classifier.")]
    assert [(k, list(v.shape)) for k, v in bare.state_dict().items()] == ref


def test_atst_state_dict_matches_published_checkpoint_layout():
    model = FrameAST(MEL64_ATST)
    got = sorted((k, list(v.shape)) for k, v in model.state_dict().items())
    assert got == sorted(fixture_keys("atst_frame_keys.json"))


def test_atst_checkpoint_key_mapping():
    t = torch.zeros(1)
    lightning = {
        "encoder.encoder.blocks.0.attn.qkv.weight": t,
        "encoder.encoder.norm_frame.weight": t,
        "encoder.encoder.teacher_module.blocks.0.attn.qkv.weight": t,
        "head.weight": t,
    }
    assert sorted(atst_state_dict(lightning)) == ["blocks.0.attn.qkv.weight", "norm_frame.weight"]
    teacher = {"model.teacher.encoder.norm.weight": t, "model.teacher.encoder.cls_token": t,
               "model.teacher.encoder.pos_embed": t}
    assert sorted(atst_state_dict(teacher)) == ["norm_frame.weight", "pos_embed"]


# ---------------------------------------------------------------------------------- full-size forwards
# Full-size encoders are built once per module (building initialises ~86 M parameters).


@pytest.fixture(scope="module")
def passt():
    torch.manual_seed(0)
    return AUDIO_ENCODERS.build("passt", frontend=KALDI128, weights="none")


@pytest.fixture(scope="module")
def atst():
    torch.manual_seed(0)
    return AUDIO_ENCODERS.build("atst_frame", frontend=MEL64_ATST, weights="none")


@pytest.mark.slow
def test_passt_full_size_30s_and_3s(passt):
    enc = passt.eval()
    assert isinstance(enc, SnippetEncoder) and enc.out_dim == 768
    assert 86.0e6 < sum(p.numel() for p in enc.parameters()) < 86.3e6
    mel, lengths = clips(KALDI128, (30.0, 3.0))
    assert lengths.tolist() == [3000 + 2, 300 + 2]  # + tail_frames (frames_past_end)
    with torch.no_grad():
        tokens, weights = enc(mel, lengths)
        # snippet averaging: the pooled output is the mean of the three 10 s snippets' embeddings
        snippets = mel[0, :, :3000].reshape(128, 3, 1000).permute(1, 0, 2)
        alone = enc.backbone(snippets, torch.full((3,), 1000))[0][:, 0]
    # a 4th snippet holds only the 2 tail frames: not audio, weight 0
    assert tokens.shape == (2, 4, 768) and weights.tolist() == [[1, 1, 1, 0], [1, 0, 0, 0]]
    pooled = weighted_mean(tokens, weights)
    torch.testing.assert_close(pooled[0], alone.mean(0), atol=1e-4, rtol=1e-4)
    assert torch.isfinite(pooled[1]).all() and not torch.allclose(pooled[1], pooled[0])


def test_passt_patchout_only_in_training(passt):
    enc = passt
    seq = []
    hook = enc.backbone.net.blocks[0].register_forward_hook(lambda _m, inp, _o: seq.append(inp[0].shape[1]))
    mel, lengths = clips(KALDI128, (3.0,))  # 300 frames, completed with silence to 10 s -> 8 x 62 patches
    with torch.no_grad():
        enc.eval()
        tokens, _ = enc(mel, lengths)
        enc.train()
        enc(mel, lengths)
    hook.remove()
    enc.eval()
    assert tokens.shape == (1, 1, 768)
    assert seq == [2 + 8 * 62, 2 + (8 - 2) * (62 - 15)]


@pytest.mark.slow
def test_atst_full_size_30s_and_3s_snippet_average(atst):
    enc = atst.eval()
    assert isinstance(enc, SnippetEncoder) and enc.snippet_frames == 1000 and enc.out_dim == 768
    assert 85.3e6 < sum(p.numel() for p in enc.parameters()) < 85.5e6
    mel, lengths = clips(MEL64_ATST, (30.0, 3.0))
    assert lengths.tolist() == [3001 + 4, 301 + 4]  # + tail_frames (frames_past_end)
    with torch.no_grad():
        tokens, weights = enc(mel, lengths)
        x, fill = enc.backbone.prepare(mel, lengths)  # dB scale with each clip's own maximum
        snippets = x[0, :, :3000].reshape(64, 3, 1000).permute(1, 0, 2)
        long_tokens = enc.backbone(snippets, torch.full((3,), 1000))[0]
        short_in = torch.cat([x[1:, :, :305], fill[1:].expand(1, 64, 695)], -1)  # + tail, completed with silence
        short_tokens = enc.backbone(short_in, lengths[1:])[0]
    # 4 snippets of 250 tokens; the 4th holds one frame (< one 4-frame token) and is dropped
    assert tokens.shape == (2, 4 * 250, 768)
    w = weights.reshape(2, 4, 250)
    torch.testing.assert_close(w.sum(-1), torch.tensor([[250.0, 250.0, 250.0, 0.0], [75.0, 0.0, 0.0, 0.0]]))
    pooled = weighted_mean(tokens, weights)  # the authors' pooling: mean over all valid tokens
    torch.testing.assert_close(pooled[0], long_tokens.reshape(-1, 768).mean(0), atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(pooled[1], short_tokens[0, : 301 // 4].mean(0), atol=1e-4, rtol=1e-4)
    # the silence is attended to (authors, ATST-SED): masking it out changes the tokens
    enc.backbone.mask_padding = True
    try:
        with torch.no_grad():
            masked = enc.backbone(short_in, lengths[1:])[0]
    finally:
        enc.backbone.mask_padding = False
    assert not torch.allclose(masked[0, :75], short_tokens[0, :75], atol=1e-3)


def test_atst_frequency_warping_only_in_training():
    torch.manual_seed(0)
    backbone = FrameAST(MEL64_ATST, depth=1, freq_warp=0.1)  # one layer: only the input path matters here
    mel, lengths = clips(MEL64_ATST, (2.0,))
    with torch.no_grad():
        backbone.eval()
        a, b = backbone(mel, lengths)[0], backbone(mel, lengths)[0]
        backbone.train()
        c = backbone(mel, lengths)[0]
    assert torch.equal(a, b) and not torch.allclose(a, c)


def _defaults(fn) -> dict:
    return {k: p.default for k, p in inspect.signature(fn).parameters.items() if p.default is not p.empty}


@pytest.mark.parametrize("cls,builder", [(FrameAST, build_atst_frame), (MobileNetV3, build_mn40_as_ext),
                                         (SmallMobileNet, build_small_mobilenet2d),
                                         (SmallMobileNet, build_small_mobilenet1d)])
def test_an_encoder_and_its_builder_have_one_default_per_setting(cls, builder):
    own, built = _defaults(cls.__init__), _defaults(builder)
    shared = {k for k in own.keys() & built.keys() if own[k] is not None}  # None: the builder's variant decides
    assert shared and {k: own[k] for k in shared} == {k: built[k] for k in shared}


def test_text_encoder_defaults_are_shared_by_every_text_model():
    own = _defaults(HFTextEncoder.__init__)
    for name in TEXT_ENCODERS.names():
        built = _defaults(TEXT_ENCODERS.get(name))
        assert (built["max_length"], built["trainable_layers"]) == (own["max_length"], own["trainable_layers"]), name


def test_atst_default_is_the_authors_no_frequency_warping():
    """The authors' wrapper computes the warp and discards it; the paper preset states the same value."""
    assert _defaults(build_atst_frame)["freq_warp"] == _defaults(FrameAST.__init__)["freq_warp"] == FREQ_WARP == 0.0
    assert PRESET["audio_encoders"]["atst"]["kwargs"]["freq_warp"] == FREQ_WARP


def test_frequency_warp_stretches_a_random_band_of_at_least_nine_tenths():
    torch.manual_seed(0)
    ramp = torch.arange(64.0)[None, :, None].expand(200, 64, 3).contiguous()  # bin index as the value
    out = frequency_warp(ramp, 0.1)
    lo, hi = out[:, 0, 0], out[:, -1, 0]  # = first and last kept bin (align_corners)
    assert torch.allclose(lo, lo.round(), atol=1e-4) and torch.allclose(hi, hi.round(), atol=1e-4)
    h = hi - lo + 1
    assert h.min() >= 57 and h.max() <= 64 and (h < 64).any()
    assert lo.min() >= 0 and hi.max() <= 63 and (lo > 0).any() and (hi < 63).any()  # the band starts anywhere
    assert torch.equal(frequency_warp(ramp, 0.0), ramp)


@pytest.mark.slow
def test_mn40_full_size_30s_and_3s():
    torch.manual_seed(0)
    enc = AUDIO_ENCODERS.build("mn40_as_ext", frontend=KALDI128, weights="none").eval()
    assert enc.out_dim == 3840
    mel, lengths = clips(KALDI128, (30.0, 3.0))
    with torch.no_grad():
        tokens, weights = enc(mel, lengths)
        snippets = mel[0, :, :3000].reshape(128, 3, 1000).permute(1, 0, 2)
        per_snippet = weighted_mean(*enc.backbone(snippets, torch.full((3,), 1000)))
    # the authors' way: 10 s snippets (32 tokens each), each one's global pool, snippets averaged
    assert tokens.shape == (2, 4 * 32, 3840)  # a 4th snippet holds only the 2 tail frames: weight 0
    torch.testing.assert_close(weights.reshape(2, 4, 32).sum(-1),
                               torch.tensor([[1.0, 1.0, 1.0, 0.0], [1.0, 0.0, 0.0, 0.0]]))
    torch.testing.assert_close(weighted_mean(tokens, weights)[0], per_snippet.mean(0), atol=1e-4, rtol=1e-4)


# ----------------------------------------------------------------------------------------- concat, text


def test_concat_is_the_concatenation_of_pooled_parts():
    torch.manual_seed(0)
    fe = FrontendConfig()
    parts = [{"arch": "small_mobilenet1d", "kwargs": {"out_dim": 32}},
             {"arch": "small_transformer", "kwargs": {"dim": 16, "depth": 1, "heads": 2}}]
    enc = AUDIO_ENCODERS.build("concat", frontend=fe, parts=parts).eval()
    assert enc.out_dim == 32 + 16
    mel, lengths = clips(fe, (3.0, 1.0))
    with torch.no_grad():
        tokens, weights = enc(mel, lengths)
        expected = torch.cat([weighted_mean(*p(mel, lengths)) for p in enc.parts], -1)
    assert tokens.shape == (2, 1, 48) and weights.tolist() == [[1.0], [1.0]]
    torch.testing.assert_close(tokens[:, 0], expected)
    with pytest.raises(ValueError, match="parts\\[0\\]"):
        AUDIO_ENCODERS.build("concat", frontend=fe, parts=[{"name": "x"}])


def test_text_encoders_registered():
    assert {"minilm", "roberta-large", "bert-large", "t5-large"} <= set(TEXT_ENCODERS.names())


def test_checkpoint_file_round_trip(tmp_path):
    """A Lightning-style ATST checkpoint file loads strictly through the key mapping."""
    torch.manual_seed(0)
    src, dst = FrameAST(MEL64_ATST, depth=1), FrameAST(MEL64_ATST, depth=1)
    ckpt = {"state_dict": {f"encoder.encoder.{k}": v for k, v in src.state_dict().items()}, "epoch": 3}
    torch.save(ckpt, tmp_path / "atst.ckpt")
    dst.load_checkpoint(pretrained.resolve(str(tmp_path / "atst.ckpt"), "atst_as2M"))
    for k, v in src.state_dict().items():
        assert torch.equal(dst.state_dict()[k], v), k
    del ckpt["state_dict"]["encoder.encoder.pos_embed"]
    torch.save(ckpt, tmp_path / "broken.ckpt")
    with pytest.raises(RuntimeError, match="pos_embed"):
        dst.load_checkpoint(tmp_path / "broken.ckpt")


def test_t5_encoder_path_offline(tmp_path):
    """``encoder_only`` loads a T5 encoder (width from ``d_model``, layers under ``encoder.block``); a tiny random
    T5 with MiniLM's tokenizer stands in for t5-large offline."""
    transformers = pytest.importorskip("transformers")
    from salsa2.model.encoders.text import minilm_path

    tok = transformers.AutoTokenizer.from_pretrained(minilm_path())
    cfg = transformers.T5Config(vocab_size=tok.vocab_size, d_model=32, d_kv=8, d_ff=64, num_layers=3, num_heads=4)
    torch.manual_seed(0)
    transformers.T5EncoderModel(cfg).save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    enc = HFTextEncoder(str(tmp_path), pooling="mean", max_length=8, trainable_layers=1, encoder_only=True)
    assert enc.out_dim == 32
    trainable = {n.split(".")[2] for n, p in enc.model.named_parameters() if p.requires_grad}
    assert trainable == {"2"}  # only the top block of encoder.block.{0,1,2}
    out = enc.encode(["a dog barks", "rain falls on a tin roof while thunder rumbles in the distance"])
    assert out.shape == (2, 32) and torch.isfinite(out).all()
    assert enc.tokenize(["word " * 50])["input_ids"].shape[1] == 8
    enc.save_source(tmp_path / "saved")  # as a checkpoint keeps it: rebuilt without the source folder
    rebuilt = HFTextEncoder.from_source(tmp_path / "saved")
    rebuilt.load_state_dict(enc.state_dict())
    assert type(rebuilt.model) is type(enc.model) and rebuilt.trainable_layers == 1 and rebuilt.name == str(tmp_path)
    texts = ["a dog barks", "rain falls"]
    with torch.no_grad():
        assert torch.equal(rebuilt.eval().encode(texts), enc.eval().encode(texts))


def test_passt_frame_tokens(passt):
    """``output: frames``: one token per 16-frame time column; patchout removes 15 columns in training."""
    mel, lengths = clips(KALDI128, (3.0, 1.0))  # 300 and 100 frames, completed to 10 s: 62 columns, 19 / 7 valid
    backbone = passt.backbone
    backbone.output = "frames"
    try:
        with torch.no_grad():
            backbone.eval()
            tokens, weights = backbone(mel, lengths)
            backbone.train()
            t_train, w_train = backbone(mel, lengths)
    finally:
        backbone.output = "embedding"
        backbone.eval()
    assert tokens.shape == (2, 62, 768) and weights.sum(1).tolist() == [19, 7]
    assert t_train.shape == (2, 62 - 15, 768) and w_train.sum(1).tolist() == [47, 47]
