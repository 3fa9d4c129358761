"""Settings of a log-mel frontend, without torch: config parsing and the data stages read them (the
computation is ``salsa2.audio.frontends``)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
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
        load_rate: 0 (default): audio is decoded straight to ``sample_rate``. Else audio is decoded to
            ``load_rate`` and the frontend resamples it to ``sample_rate`` with ``sinc_resample`` first, as the
            authors' ATST wrapper (OptimusPrimus/salsa ``models/audio/atst.py``) takes 32 kHz audio through
            torchaudio's ``Resample(32000, 16000)``.
        frames_past_end: also compute the ``tail_frames`` frames whose window straddles the end of the audio,
            over zero samples, and store them with the clip (they count in its length). The authors compute
            each 10 s snippet from a waveform zero-padded to 10 s, so these frames hold partial audio there;
            encoders subtract ``tail_frames`` when they count valid frames.
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
    load_rate: int = 0
    frames_past_end: bool = False

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
    def input_rate(self) -> int:
        """The rate audio is decoded to before this frontend (``load_rate`` if set, else ``sample_rate``)."""
        return self.load_rate or self.sample_rate

    @property
    def tail_frames(self) -> int:
        """Frames past the end of the audio stored with each clip: ceil(win_length / 2 / hop) or 0."""
        return math.ceil(self.win_length / 2 / self.hop_length) if self.frames_past_end else 0

    @property
    def frames_per_second(self) -> float:
        return self.sample_rate / self.hop_length

    def num_frames(self, num_samples: int) -> int:
        """Frames the (centred) STFT yields for ``num_samples`` samples (at ``sample_rate``)."""
        if self.preemphasis and self.preemphasis_trim:
            num_samples -= 1
        return num_samples // self.hop_length + 1 + self.tail_frames

    def key(self) -> str:
        """A short stable hash of the settings that change the cached values (not the norm constants)."""
        # Fields added after the first caches were built count only when changed, so old keys stay valid.
        added = ("preemphasis_trim", "window", "load_rate", "frames_past_end")
        later = {f.name: f.default for f in dataclasses.fields(self) if f.name in added}
        fields = {
            k: v
            for k, v in dataclasses.asdict(self).items()
            if not k.startswith("norm_") and not (k in later and v == later[k])
        }
        blob = json.dumps(fields, sort_keys=True).encode()
        return hashlib.sha1(blob).hexdigest()[:10]

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)
