"""Settings of a log-mel frontend, without torch: config parsing and the data stages read them (the
computation is ``salsa2.frontends``)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass


@dataclass(frozen=True)
class FrontendConfig:
    """Settings of a log-mel frontend. Two encoders with equal settings share one spectrogram cache.

    Attributes:
        sample_rate: audio is resampled to this rate (Hz) before the STFT.
        n_fft: FFT size in samples.
        win_length: analysis window in samples (Hann).
        hop_length: hop in samples (one spectrogram frame per hop).
        n_mels: number of mel bands.
        f_min, f_max: band edges in Hz (``f_max`` <= sample_rate / 2).
        mel_scale: ``htk`` (2595 log10(1 + f/700)) or ``slaney`` (linear below 1 kHz): triangles in Hz over
            the FFT bins; ``kaldi``: Kaldi's banks (triangles in the 1127 ln(1 + f/700) mel domain, no filter on
            the Nyquist bin), as PaSST's and EfficientAT's ``AugmentMelSTFT`` build them.
        preemphasis: coefficient of the first-order pre-emphasis filter (0 disables it).
        preemphasis_trim: True: ``y[n] = x[n+1] - p x[n]`` (one sample shorter, PaSST's convolution);
            False: the first sample is kept.
        window: ``hann`` (periodic) or ``hann_symmetric`` (PaSST / EfficientAT).
        log_offset: added before the natural log.
        norm_mean, norm_std: constants the encoders use to standardise ``(x - mean) / std``.
    """

    sample_rate: int = 16000
    n_fft: int = 512
    win_length: int = 400
    hop_length: int = 160
    n_mels: int = 64
    f_min: float = 0.0
    f_max: float = 8000.0
    mel_scale: str = "htk"
    preemphasis: float = 0.0
    log_offset: float = 1e-5
    norm_mean: float = -4.5
    norm_std: float = 5.0
    preemphasis_trim: bool = False
    window: str = "hann"

    def __post_init__(self) -> None:
        if self.win_length > self.n_fft:
            raise ValueError(f"win_length {self.win_length} > n_fft {self.n_fft}")
        if self.f_max > self.sample_rate / 2:
            raise ValueError(f"f_max {self.f_max} exceeds Nyquist {self.sample_rate / 2}")
        if self.mel_scale not in ("htk", "slaney", "kaldi"):
            raise ValueError(f"mel_scale must be 'htk', 'slaney' or 'kaldi', got {self.mel_scale!r}")
        if self.window not in ("hann", "hann_symmetric"):
            raise ValueError(f"window must be 'hann' or 'hann_symmetric', got {self.window!r}")

    @property
    def frames_per_second(self) -> float:
        return self.sample_rate / self.hop_length

    def num_frames(self, num_samples: int) -> int:
        """Frames the (centred) STFT yields for ``num_samples`` samples."""
        if self.preemphasis and self.preemphasis_trim:
            num_samples -= 1
        return num_samples // self.hop_length + 1

    def key(self) -> str:
        """A short stable hash of the settings that change the cached values (not the norm constants)."""
        # Fields added after the first caches were built count only when changed, so old keys stay valid.
        later = {f.name: f.default for f in dataclasses.fields(self) if f.name in ("preemphasis_trim", "window")}
        fields = {
            k: v
            for k, v in dataclasses.asdict(self).items()
            if not k.startswith("norm_") and not (k in later and v == later[k])
        }
        blob = json.dumps(fields, sort_keys=True).encode()
        return hashlib.sha1(blob).hexdigest()[:10]

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)
