"""Log-mel frontend: filterbank geometry, spectrogram shape and cache keys."""

import numpy as np
import pytest
import torch

from salsa2.audio.frontends import FrontendConfig, LogMel, hz_to_mel, mel_filterbank, mel_to_hz
from helpers.paper import KALDI128


@pytest.mark.parametrize("scale", ["htk", "slaney"])
def test_mel_scale_inverts(scale):
    f = np.array([0.0, 100.0, 999.0, 1000.0, 4000.0, 8000.0])
    np.testing.assert_allclose(mel_to_hz(hz_to_mel(f, scale), scale), f, atol=1e-6)


def test_htk_reference_value():
    assert hz_to_mel(700.0, "htk") == pytest.approx(2595 * np.log10(2))


def test_filters_peak_at_their_centres():
    cfg = FrontendConfig(n_mels=10, n_fft=2048, win_length=2048)
    fb = mel_filterbank(cfg)
    assert fb.shape == (10, 1025)
    freqs = np.linspace(0, 8000, 1025)
    centres = mel_to_hz(np.linspace(hz_to_mel(0, "htk"), hz_to_mel(8000, "htk"), 12), "htk")[1:-1]
    np.testing.assert_allclose(freqs[fb.argmax(1)], centres, atol=8000 / 1024)
    assert fb.max() <= 1 + 1e-6


def test_logmel_shape_and_tone_band():
    cfg = FrontendConfig()
    t = np.arange(16000) / 16000
    wav = torch.from_numpy(np.sin(2 * np.pi * 1000 * t).astype(np.float32))[None]
    mel = LogMel(cfg)(wav)
    assert mel.shape == (1, 64, cfg.num_frames(16000))
    band = int(mel[0, :, 50].argmax())
    centres = mel_to_hz(np.linspace(hz_to_mel(0, "htk"), hz_to_mel(8000, "htk"), 66), "htk")[1:-1]
    assert abs(centres[band] - 1000) < 120


def test_key_ignores_normalisation_constants_only():
    assert FrontendConfig().key() == FrontendConfig(norm_mean=0.0).key()
    assert FrontendConfig().key() != FrontendConfig(hop_length=320).key()


def test_frontend_keys_of_existing_settings_are_unchanged():
    assert FrontendConfig().key() == "ef8e59e376"  # the demo's mel64 cache key before the new fields
    assert FrontendConfig(window="hann_symmetric").key() != FrontendConfig().key()
    assert KALDI128.key() != FrontendConfig(**{**KALDI128.to_dict(), "mel_scale": "slaney"}).key()
    with pytest.raises(ValueError, match="mel_scale"):
        FrontendConfig(mel_scale="mfcc")
