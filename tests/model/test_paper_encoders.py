"""The paper's encoders (Primus et al. 2024 4.2.1) at full size with random weights, their frontends and weights cache.

Key/shape fixtures in tests/fixtures were dumped from the reference repositories' own model code
(tests/fixtures/make_key_fixtures.py), not from salsa2's.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
import yaml

from salsa2.config import presets
from salsa2.model import pretrained
from salsa2.config.params import load_params, training_params
from salsa2.model.encoders import AUDIO_ENCODERS, TEXT_ENCODERS
from salsa2.model.encoders.atst import FrameAST, atst_state_dict, frequency_warp
from salsa2.model.encoders.base import SnippetEncoder, weighted_mean
from salsa2.model.encoders.efficientat import MobileNetV3
from salsa2.audio.frontends import FrontendConfig, LogMel, kaldi_mel_banks
from helpers import FIXTURES, REPO
from helpers.paper import KALDI128, MEL64_ATST, PRESET


def fixture_keys(name: str) -> list[tuple[str, list[int]]]:
    return [(k, s) for k, s in json.loads((FIXTURES / name).read_text())["keys"]]


def clips(cfg: FrontendConfig, seconds: tuple[float, ...], seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A padded batch of random log-mels of the given durations (frames as the frontend yields them)."""
    g = torch.Generator().manual_seed(seed)
    lengths = torch.tensor([cfg.num_frames(int(s * cfg.sample_rate)) for s in seconds])
    mel = torch.randn(len(seconds), cfg.n_mels, int(lengths.max()), generator=g) - 4.0
    return mel, lengths


# ----------------------------------------------------------------------------------------------- frontends


def test_kaldi_mel_banks_match_hand_computed_triangles():
    # One band between 0 Hz and 4 kHz at sr 8 kHz, n_fft 8: bins at 0, 1, 2, 3 kHz (+ a zero Nyquist column).
    banks = kaldi_mel_banks(1, 8, 8000, 0.0, 4000.0)
    assert banks.shape == (1, 5)
    mel = lambda f: 1127.0 * math.log(1.0 + f / 700.0)  # noqa: E731
    hi = mel(4000.0)
    centre = hi / 2
    expected = [min(mel(f) / centre, (hi - mel(f)) / (hi - centre)) for f in (0.0, 1000.0, 2000.0, 3000.0)]
    np.testing.assert_allclose(banks[0, :4], np.maximum(expected, 0.0), rtol=1e-6)
    assert banks[0, 4] == 0.0
    assert banks[0, 1] == pytest.approx(0.93193, abs=1e-4)  # mel(1 kHz) = 1000.0, centre = 2146.07 / 2


def test_kaldi128_bank_shape_and_coverage():
    fb = torch.from_numpy(kaldi_mel_banks(128, 1024, 32000, 0.0, 15000.0))
    assert fb.shape == (128, 513)
    assert fb[:, -1].abs().sum() == 0 and (fb >= 0).all() and fb.max() <= 1.0
    above = torch.arange(513) * 32000 / 1024 > 15000.0
    assert fb[:, above].sum() == 0  # nothing above f_max
    assert (fb.sum(1) > 0).all()  # every band sees at least one bin


def test_frontend_keys_of_existing_settings_are_unchanged():
    assert FrontendConfig().key() == "ef8e59e376"  # the demo's mel64 cache key before the new fields
    assert FrontendConfig(window="hann_symmetric").key() != FrontendConfig().key()
    assert KALDI128.key() != FrontendConfig(**{**KALDI128.to_dict(), "mel_scale": "slaney"}).key()
    with pytest.raises(ValueError, match="mel_scale"):
        FrontendConfig(mel_scale="mfcc")


def test_passt_frontend_details():
    """Trimmed pre-emphasis (one sample shorter), symmetric Hann window, Kaldi banks."""
    n = 32000
    module = LogMel(KALDI128)
    assert torch.equal(module.window, torch.hann_window(800, periodic=False))
    wav = torch.sin(torch.arange(n) * 2 * math.pi * 1000 / 32000)[None]
    out = module(wav)
    assert KALDI128.tail_frames == 2  # frames_past_end: ceil(400 / 320) frames straddle the end
    assert out.shape == (1, 128, KALDI128.num_frames(n)) == (1, 128, (n - 1) // 320 + 1 + 2)
    # the pre-emphasised signal the STFT sees is x[1:] - 0.97 x[:-1]: compare one frame by hand
    y = wav[0, 1:] - 0.97 * wav[0, :-1]
    frame = torch.nn.functional.pad(y[None], (512, 512), mode="reflect")[0, 320 * 10: 320 * 10 + 1024]
    window = torch.nn.functional.pad(module.window, (112, 112))
    power = torch.fft.rfft(frame * window).abs().square()
    expected = torch.log(module.fbank @ power + 1e-5)
    torch.testing.assert_close(out[0, :, 10], expected, atol=1e-3, rtol=1e-4)


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


# ------------------------------------------------------------------------------------------------ weights


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


# ------------------------------------------------------------------------------------------------- preset


def test_paper_preset_parses_and_its_overrides_reproduce_it():
    base = yaml.safe_load((REPO / "params.yaml").read_text())
    merged = presets.apply(PRESET, base)
    params = training_params(merged)
    assert params.embed_dim == 1024 and params.text.model == "roberta-large"
    for name in params.encoders:
        enc = params.audio_encoder(name)
        assert enc.arch in AUDIO_ENCODERS
        params.frontend(enc.frontend)
    assert params.audio_encoder("atst").lr == pytest.approx(4e-6)
    args = presets.override_args(PRESET, base)
    assert "+audio_encoders.atst={arch:atst_frame,lr:4.0e-06,batch_size:64," \
           "kwargs:{weights:pretrained,freq_warp:0.0,snippet_seconds:10.0}}" in args
    # the selection and the caches are replaced, not merged: DVC deletes the demo's first
    assert args[:4] == ["-S", "~encoders", "-S", "+encoders={passt:kaldi128,atst:mel64_atst,mn:kaldi128}"]
    assert "~frontends" in args and "embed_dim=1024" in args
    # every float is written so that YAML reads it back as a float
    for a in args[1::2]:
        for tok in a.replace("{", ",").replace("}", ",").replace("=", ",").split(","):
            val = tok.split(":")[-1]
            if "e-" in val:
                assert isinstance(yaml.safe_load(val), float), a


def test_dvc_applies_the_documented_overrides(tmp_path):
    """The `dvc exp run -S ...` arguments, applied by DVC's own writer, give exactly the merged preset."""
    hydra = pytest.importorskip("dvc.utils.hydra")
    base = yaml.safe_load((REPO / "params.yaml").read_text())
    target = tmp_path / "params.yaml"
    target.write_text((REPO / "params.yaml").read_text())
    hydra.apply_overrides(str(target), presets.override_args(PRESET, base)[1::2])
    assert load_params(target) == presets.apply(PRESET, base)


def test_t5_encoder_path_offline(tmp_path):
    """``encoder_only`` loads a T5 encoder (width from ``d_model``, layers under ``encoder.block``); a tiny random
    T5 with MiniLM's tokenizer stands in for t5-large offline."""
    transformers = pytest.importorskip("transformers")
    from salsa2.model.encoders.text import HFTextEncoder, minilm_path

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


def test_saved_model_reloads_without_fetching_pretrained_weights(tmp_path):
    """``load_checkpoint`` rebuilds an encoder that has ``weights`` with ``weights: none`` (the saved state replaces
    it)."""
    from salsa2.model.checkpoint import load_checkpoint, save_checkpoint
    from salsa2.model.dual_encoder import DualEncoder, ModelConfig

    calls = []

    if "_test_pretrained_cnn" not in AUDIO_ENCODERS:
        @AUDIO_ENCODERS.register("_test_pretrained_cnn")
        def _build(frontend, weights="pretrained"):
            calls.append(weights)
            if weights != "none":
                raise pretrained.WeightsUnavailable("would download")
            return AUDIO_ENCODERS.build("small_mobilenet1d", frontend=frontend, out_dim=16)

    torch.manual_seed(0)
    cfg = ModelConfig("_test_pretrained_cnn", FrontendConfig(), embed_dim=8, audio_kwargs={"weights": "none"})
    model = DualEncoder(cfg)
    model.cfg = ModelConfig(**{**cfg.__dict__, "audio_kwargs": {"weights": "pretrained"}})  # as trained
    save_checkpoint(tmp_path / "m", model)
    loaded, _ = load_checkpoint(tmp_path / "m")
    assert calls == ["none", "none"] and loaded.cfg.audio_kwargs == {"weights": "pretrained"}
    for k, v in model.audio_encoder.state_dict().items():
        assert torch.equal(loaded.audio_encoder.state_dict()[k], v)


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
