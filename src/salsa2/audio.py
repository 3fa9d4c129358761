"""Audio decoding: any file libsndfile reads (wav/flac/ogg/mp3), mixed to mono and resampled with soxr."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
import soxr


class AudioReadError(RuntimeError):
    """A clip that cannot be used; ``reason`` is a short machine-readable tag (corrupt, empty, silent, ...)."""

    def __init__(self, path: str | Path, reason: str, detail: str = "") -> None:
        self.path = str(path)
        self.reason = reason
        self.detail = detail
        super().__init__(f"{path}: {reason}{': ' + detail if detail else ''}")


def load_audio(
    path: str | Path,
    sample_rate: int,
    *,
    min_duration: float = 0.0,
    reject_silent: bool = True,
    silence_rms: float = 1e-5,
) -> np.ndarray:
    """Decode ``path`` to a mono float32 waveform at ``sample_rate``.

    Raises:
        AudioReadError: the file is unreadable (``corrupt``), has no samples (``empty``), is shorter than
            ``min_duration`` seconds (``too_short``) or is digital silence (``silent``).
    """
    try:
        wav, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as err:  # libsndfile raises several types; all mean "cannot decode"
        raise AudioReadError(path, "corrupt", str(err).splitlines()[0] if str(err) else type(err).__name__) from err
    if wav.size == 0:
        raise AudioReadError(path, "empty", "no samples")
    wav = wav.mean(axis=1)
    if not np.all(np.isfinite(wav)):
        raise AudioReadError(path, "corrupt", "non-finite samples")
    if sr != sample_rate:
        wav = soxr.resample(wav, sr, sample_rate, quality="HQ").astype(np.float32)
    duration = len(wav) / sample_rate
    if duration < min_duration:
        raise AudioReadError(path, "too_short", f"{duration:.2f} s < {min_duration:.2f} s")
    if reject_silent and float(np.sqrt(np.mean(wav.astype(np.float64) ** 2))) < silence_rms:
        raise AudioReadError(path, "silent", "RMS below threshold")
    return np.ascontiguousarray(wav, dtype=np.float32)


def audio_info(path: str | Path) -> tuple[float, int, int]:
    """(duration in seconds, sample rate, channels) from the file header, without decoding."""
    try:
        info = sf.info(str(path))
    except Exception as err:
        raise AudioReadError(path, "corrupt", str(err).splitlines()[0] if str(err) else type(err).__name__) from err
    return float(info.duration), int(info.samplerate), int(info.channels)
