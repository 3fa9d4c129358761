"""Log-mel spectrogram frontends; a frontend's settings key the spectrogram cache it reads."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from salsa2.audio.frontend_config import FrontendConfig


def hz_to_mel(f: np.ndarray | float, scale: str) -> np.ndarray:
    f = np.asarray(f, dtype=np.float64)
    if scale == "htk":
        return 2595.0 * np.log10(1.0 + f / 700.0)
    # Slaney: linear below 1 kHz, logarithmic above.
    f_sp = 200.0 / 3
    mel = f / f_sp
    min_log_hz = 1000.0
    logstep = math.log(6.4) / 27.0
    return np.where(f >= min_log_hz, min_log_hz / f_sp + np.log(np.maximum(f, 1e-10) / min_log_hz) / logstep, mel)


def mel_to_hz(m: np.ndarray | float, scale: str) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    if scale == "htk":
        return 700.0 * (10.0 ** (m / 2595.0) - 1.0)
    f_sp = 200.0 / 3
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = math.log(6.4) / 27.0
    return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), f_sp * m)


def kaldi_mel_banks(n_mels: int, n_fft: int, sample_rate: float, f_min: float, f_max: float) -> np.ndarray:
    """Kaldi's mel filterbank (``torchaudio.compliance.kaldi.get_mel_banks`` without VTLN warping), padded
    with a zero column for the Nyquist bin: shape (n_mels, n_fft // 2 + 1), peak <= 1.

    Band edges are equally spaced on mel = 1127 ln(1 + f/700) between ``f_min`` and ``f_max`` (``f_max`` <= 0
    counts from Nyquist); each FFT bin k (frequency k * sr / n_fft, k < n_fft / 2) gets the triangle's value
    at its mel position, i.e. the triangles are linear in mel, not in Hz.
    """
    if f_max <= 0:
        f_max += sample_rate / 2
    mel = lambda f: 1127.0 * np.log1p(np.asarray(f, dtype=np.float64) / 700.0)  # noqa: E731
    lo, hi = mel(f_min), mel(f_max)
    delta = (hi - lo) / (n_mels + 1)
    band = np.arange(n_mels, dtype=np.float64)[:, None]
    left, centre, right = lo + band * delta, lo + (band + 1) * delta, lo + (band + 2) * delta
    bins_mel = mel(sample_rate / n_fft * np.arange(n_fft // 2))[None, :]
    up = (bins_mel - left) / (centre - left)
    down = (right - bins_mel) / (right - centre)
    banks = np.maximum(0.0, np.minimum(up, down))
    return np.pad(banks, ((0, 0), (0, 1))).astype(np.float32)


def mel_filterbank(cfg: FrontendConfig) -> np.ndarray:
    """Triangular mel filters, shape (n_mels, n_fft // 2 + 1), peak 1 (no area normalisation)."""
    if cfg.mel_scale == "kaldi":
        return kaldi_mel_banks(cfg.n_mels, cfg.n_fft, cfg.sample_rate, cfg.f_min, cfg.f_max)
    n_freqs = cfg.n_fft // 2 + 1
    fft_freqs = np.linspace(0.0, cfg.sample_rate / 2, n_freqs)
    mel_pts = np.linspace(hz_to_mel(cfg.f_min, cfg.mel_scale), hz_to_mel(cfg.f_max, cfg.mel_scale), cfg.n_mels + 2)
    hz_pts = mel_to_hz(mel_pts, cfg.mel_scale)
    lower, centre, upper = hz_pts[:-2, None], hz_pts[1:-1, None], hz_pts[2:, None]
    up = (fft_freqs[None, :] - lower) / (centre - lower)
    down = (upper - fft_freqs[None, :]) / (upper - centre)
    return np.maximum(0.0, np.minimum(up, down)).astype(np.float32)


def sinc_resample(wav: torch.Tensor, orig: int, new: int, zeros: int = 6, rolloff: float = 0.99) -> torch.Tensor:
    """Band-limited resampling (B, N) -> (B, ceil(N new / orig)) by a Hann-windowed sinc filter, the method of
    ``torchaudio.functional.resample`` (``sinc_interp_hann``, ``lowpass_filter_width=zeros``, ``rolloff``).

    With g = gcd(orig, new), o = orig / g, n = new / g and cutoff c = min(o, n) * rolloff (in units of the
    reduced rates), output j of every group of n reads inputs at offsets k / o - j / n, k = -w .. w + o - 1,
    w = ceil(zeros * o / c), with weights (c / o) sinc(pi c t) cos^2(pi c t / (2 zeros)), c t clamped to
    [-zeros, zeros]. Inputs are zero-padded by w on the left and w + o on the right.
    """
    if orig == new:
        return wav
    g = math.gcd(orig, new)
    o, n = orig // g, new // g
    cutoff = min(o, n) * rolloff
    width = math.ceil(zeros * o / cutoff)
    offsets = torch.arange(-width, width + o, dtype=torch.float64)[None, :] / o
    t = (offsets - torch.arange(n, dtype=torch.float64)[:, None] / n) * cutoff
    t = t.clamp(-zeros, zeros)
    window = torch.cos(t * math.pi / zeros / 2) ** 2
    arg = t * math.pi
    sinc = torch.where(arg == 0, torch.ones_like(arg), torch.sin(arg) / torch.where(arg == 0, 1.0, arg))
    kernel = (sinc * window * cutoff / o).to(wav.dtype)[:, None, :]  # (n, 1, K)
    length = wav.shape[-1]
    x = nn.functional.pad(wav[:, None, :], (width, width + o))
    out = nn.functional.conv1d(x, kernel, stride=o).transpose(1, 2).reshape(wav.shape[0], -1)
    return out[:, : math.ceil(n * length / o)]


class LogMel(nn.Module):
    """Waveform (B, samples) -> log-mel spectrogram (B, n_mels, frames) as configured by ``FrontendConfig``."""

    def __init__(self, cfg: FrontendConfig) -> None:
        super().__init__()
        self.cfg = cfg
        window = torch.hann_window(cfg.win_length, periodic=cfg.window == "hann")
        self.register_buffer("window", window, persistent=False)
        self.register_buffer("fbank", torch.from_numpy(mel_filterbank(cfg)), persistent=False)

    @torch.no_grad()
    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        cfg = self.cfg
        if cfg.load_rate and cfg.load_rate != cfg.sample_rate:
            wav = sinc_resample(wav, cfg.load_rate, cfg.sample_rate)
        if cfg.tail_frames:
            wav = nn.functional.pad(wav, (0, cfg.tail_frames * cfg.hop_length))
        if cfg.preemphasis:
            head = wav[:, :0] if cfg.preemphasis_trim else wav[:, :1]
            wav = torch.cat([head, wav[:, 1:] - cfg.preemphasis * wav[:, :-1]], dim=1)
        spec = torch.stft(
            wav,
            n_fft=cfg.n_fft,
            hop_length=cfg.hop_length,
            win_length=cfg.win_length,
            window=self.window,
            center=True,
            pad_mode="reflect" if wav.shape[-1] > cfg.n_fft // 2 else "constant",
            return_complex=True,
        )
        power = spec.real.square() + spec.imag.square()
        mel = torch.matmul(self.fbank, power)
        return torch.log(mel + cfg.log_offset)


def compute_logmel(wav: np.ndarray, cfg: FrontendConfig, module: LogMel | None = None) -> np.ndarray:
    """Log-mel of one mono waveform as float32 (n_mels, frames)."""
    module = module or LogMel(cfg)
    with torch.no_grad():
        out = module(torch.from_numpy(np.ascontiguousarray(wav, dtype=np.float32))[None])[0]
    return out.numpy()
