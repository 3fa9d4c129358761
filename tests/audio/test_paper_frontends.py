"""The paper frontends' authors-path details: Kaldi mel banks, PaSST's pre-emphasis and window, 32 -> 16 kHz sinc
resampling and frames past the clip's end."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from salsa2.audio.frontends import FrontendConfig, LogMel, kaldi_mel_banks, sinc_resample
from helpers.paper import KALDI128


def tone(freq: float, rate: int, seconds: float = 0.5) -> torch.Tensor:
    t = torch.arange(int(rate * seconds), dtype=torch.float64) / rate
    return torch.sin(2 * math.pi * freq * t).float()[None]


def test_sinc_resample_keeps_the_passband_and_removes_what_aliases():
    out = sinc_resample(tone(1000.0, 32000), 32000, 16000)
    assert out.shape == (1, 8000)  # ceil(N * 16000 / 32000)
    mid = out[0, 500:-500]
    expected = tone(1000.0, 16000)[0, 500:-500]
    assert float((mid - expected).abs().max()) < 2e-3  # a 1 kHz tone passes unchanged (no delay)
    alias = sinc_resample(tone(12000.0, 32000), 32000, 16000)[0, 500:-500]
    assert float(alias.abs().max()) < 5e-3  # 12 kHz would alias to 4 kHz: filtered (~ -55 dB)
    gains = [float(sinc_resample(tone(f, 32000), 32000, 16000)[0, 500:-500].abs().max()) for f in (4000, 7000, 7800)]
    assert 0.99 < gains[0] < 1.01 and 0.7 < gains[1] < 0.9 and gains[2] < gains[1]  # torchaudio's gentle roll-off


def test_sinc_resample_kernel_values_by_hand():
    """One output sample: sum_k x[k] (c / o) sinc(pi c t) cos^2(pi c t / 12), t = k / 2 (o = 2, n = 1, c = 0.99)."""
    x = torch.randn(1, 101, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    got = sinc_resample(x.float(), 2, 1)[0, 20]
    c = 0.99
    k = np.arange(101) - 40  # input offsets around output 20 (input 40)
    ct = np.clip(c * k / 2.0, -6, 6)
    w = np.where(ct == 0, 1.0, np.sin(np.pi * ct) / np.where(ct == 0, 1, np.pi * ct)) * np.cos(np.pi * ct / 12) ** 2
    expected = float((x[0].numpy() * w * c / 2).sum())
    assert abs(float(got) - expected) < 1e-5


def test_load_rate_resamples_inside_the_frontend_and_keeps_old_keys():
    cfg = FrontendConfig(sample_rate=16000, n_fft=1024, win_length=1024, n_mels=64, f_min=60.0, f_max=7800.0)
    via = FrontendConfig(**{**cfg.to_dict(), "load_rate": 32000})
    assert via.input_rate == 32000 and cfg.input_rate == 16000
    assert via.key() != cfg.key() and FrontendConfig().key() == "ef8e59e376"
    wav = tone(440.0, 32000, 1.0)
    out = LogMel(via)(wav)
    torch.testing.assert_close(out, LogMel(cfg)(sinc_resample(wav, 32000, 16000)))


def test_frames_past_end_are_the_frames_over_zero_padding():
    cfg = FrontendConfig(frames_past_end=True)  # win 400, hop 160 -> 2 tail frames
    plain = FrontendConfig()
    assert cfg.tail_frames == 2 and plain.tail_frames == 0 and cfg.key() != plain.key()
    wav = tone(1000.0, 16000, 1.0)
    out = LogMel(cfg)(wav)
    assert out.shape[-1] == cfg.num_frames(16000) == plain.num_frames(16000) + 2
    padded = torch.nn.functional.pad(wav, (0, 16000))
    ref = LogMel(plain)(padded)[..., : out.shape[-1]]  # the same clip inside a longer, zero-padded snippet
    torch.testing.assert_close(out[..., :-3], ref[..., :-3])  # away from the end: equal
    torch.testing.assert_close(out[..., -2:], ref[..., -2:], atol=1e-4, rtol=1e-4)  # the tail frames too
    assert float(out[0, :, -2:].mean()) > math.log(1e-5) + 1.0  # and they hold audio, not silence


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
