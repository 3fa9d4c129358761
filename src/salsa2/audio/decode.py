"""Audio decoding in blocks: any file libsndfile reads (wav/flac/ogg/mp3), else through PyAV (m4a/aac/...) when
installed; mixed to mono and resampled with a streaming soxr resampler, so a long file never sits in memory at
its source rate (``iter_audio``)."""

from __future__ import annotations

import errno
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from salsa2.utils.errors import UserError

BLOCK_SECONDS = 30.0  # source audio decoded per step
SNDFILE_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".aifc", ".au", ".caf",
                      ".w64", ".rf64")
PYAV_EXTENSIONS = (".m4a", ".aac", ".wma", ".webm")  # decoded through PyAV (FFmpeg) when it is installed
PYAV_HINT = "install PyAV to read it: pip install av (or the salsa2[av] extra)"
COUNTED_EXTENSIONS = (".mp3",)  # the header's length is an estimate (Xing/bitrate): frames are counted by decoding
log = logging.getLogger(__name__)


class AudioReadError(UserError, RuntimeError):
    """A clip that cannot be used; ``reason`` is a short machine-readable tag (missing, corrupt, empty, silent, ...)."""

    def __init__(self, path: str | Path, reason: str, detail: str = "") -> None:
        self.path = str(path)
        self.reason = reason
        self.detail = detail
        super().__init__(f"{path}: {reason}{': ' + detail if detail else ''}")


def _first_line(err: Exception) -> str:
    return str(err).splitlines()[0] if str(err) else type(err).__name__


def _check_file(path: Path) -> None:
    if not path.exists():
        if path.is_symlink():  # a link whose target is gone, or a loop of links
            try:
                os.stat(path)
            except OSError as err:
                if err.errno == errno.ELOOP:
                    raise AudioReadError(path, "link_loop", "symbolic links that point at each other; point the "
                                         "link at an audio file or remove it") from None
            raise AudioReadError(path, "missing", f"a symbolic link to {os.readlink(path)}, which does not exist; "
                                 "point it at an audio file or remove it")
        raise AudioReadError(path, "missing", "file not found; check the path")
    if path.is_file() and path.stat().st_size == 0:
        raise AudioReadError(path, "empty", "zero-byte file")


def _sndfile_blocks(f: sf.SoundFile, block: int) -> Iterator[np.ndarray]:
    with f:
        while True:
            data = f.read(block, dtype="float32", always_2d=True)
            if not len(data):
                return
            yield data.mean(axis=1, dtype=np.float32) if data.shape[1] > 1 else data[:, 0]


def _pyav_open(path: Path, block_seconds: float) -> tuple[int, Iterator[np.ndarray]]:
    """(sample rate, mono float32 blocks) of a file decoded by PyAV (FFmpeg)."""
    try:
        import av
    except ImportError:
        raise AudioReadError(path, "unsupported", f"format not readable by libsndfile; {PYAV_HINT}") from None
    try:
        container = av.open(str(path))
    except Exception as err:  # FFmpeg raises many types; all mean "cannot decode"
        raise AudioReadError(path, "corrupt", _first_line(err)) from err
    rate = int(container.streams.audio[0].rate or 0) if container.streams.audio else 0
    if rate <= 0:
        container.close()
        raise AudioReadError(path, "corrupt", f"no audio stream found (format {container.format.name})")
    stream = container.streams.audio[0]
    resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
    target = max(1, int(block_seconds * rate))

    def blocks() -> Iterator[np.ndarray]:
        pending: list[np.ndarray] = []
        size = 0
        try:
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    pending.append(out.to_ndarray().reshape(-1).astype(np.float32))
                    size += len(pending[-1])
                if size >= target:
                    yield np.concatenate(pending)
                    pending, size = [], 0
            for out in resampler.resample(None):
                pending.append(out.to_ndarray().reshape(-1).astype(np.float32))
        except Exception as err:
            raise AudioReadError(path, "corrupt", _first_line(err)) from err
        finally:
            container.close()
        if pending:
            yield np.concatenate(pending)

    return rate, blocks()


def open_audio(path: str | Path, block_seconds: float = BLOCK_SECONDS) -> tuple[int, Iterator[np.ndarray]]:
    """(source sample rate, iterator of mono float32 blocks at that rate); libsndfile first, then PyAV."""
    path = Path(path)
    _check_file(path)
    try:
        f = sf.SoundFile(str(path))
    except Exception as err:  # libsndfile raises several types; all mean "cannot decode"
        sf_err = err
    else:
        return int(f.samplerate), _sndfile_blocks(f, max(1, int(block_seconds * f.samplerate)))
    if path.suffix.lower() in SNDFILE_EXTENSIONS:  # libsndfile's own formats: its error is the diagnosis
        raise AudioReadError(path, "corrupt", _first_line(sf_err)) from sf_err
    try:
        import av  # noqa: F401
    except ImportError:
        raise AudioReadError(path, "unsupported", f"{_first_line(sf_err)}; {PYAV_HINT}") from sf_err
    return _pyav_open(path, block_seconds)


def iter_audio(path: str | Path, sample_rate: int, block_seconds: float = BLOCK_SECONDS) -> Iterator[np.ndarray]:
    """Mono float32 blocks of ``path`` at ``sample_rate`` (streaming soxr HQ resampling across block borders).

    Raises:
        AudioReadError: missing, empty (zero bytes or no samples), corrupt/unsupported, or non-finite samples.
    """
    sr, blocks = open_audio(path, block_seconds)
    resampler = soxr.ResampleStream(sr, sample_rate, 1, dtype="float32", quality="HQ") if sr != sample_rate else None
    seen = 0
    try:
        for block in blocks:
            if not np.all(np.isfinite(block)):
                raise AudioReadError(path, "non_finite", f"NaN/inf samples near {seen / sr:.1f} s")
            seen += len(block)
            out = resampler.resample_chunk(block, last=False) if resampler else block
            if len(out):
                yield np.ascontiguousarray(out, dtype=np.float32)
    except AudioReadError:
        raise
    except Exception as err:  # a decode error in the middle of the file
        raise AudioReadError(path, "corrupt", _first_line(err)) from err
    if seen == 0:
        raise AudioReadError(path, "empty", "no samples")
    if resampler:
        tail = resampler.resample_chunk(np.zeros(0, np.float32), last=True)
        if len(tail):
            yield np.ascontiguousarray(tail, dtype=np.float32)


class ClipCheck:
    """Running duration and RMS of a clip decoded in blocks; ``finish`` rejects a too-short or silent clip."""

    def __init__(self, path: str | Path, sample_rate: int, min_duration: float, reject_silent: bool,
                 silence_rms: float) -> None:
        self.path, self.sample_rate = path, sample_rate
        self.min_duration, self.reject_silent, self.silence_rms = min_duration, reject_silent, silence_rms
        self.samples = 0
        self.energy = 0.0

    def add(self, block: np.ndarray) -> None:
        self.samples += len(block)
        self.energy += float(np.dot(block.astype(np.float64), block.astype(np.float64)))

    @property
    def duration(self) -> float:
        return self.samples / self.sample_rate

    def finish(self) -> None:
        if self.duration < self.min_duration:
            raise AudioReadError(self.path, "too_short", f"{self.duration:.2f} s < {self.min_duration:.2f} s")
        rms = np.sqrt(self.energy / max(self.samples, 1))
        if not np.isfinite(rms):
            raise AudioReadError(self.path, "non_finite", "samples too large (energy overflows)")
        if self.reject_silent and rms < self.silence_rms:
            raise AudioReadError(self.path, "silent", "RMS below threshold")


def load_audio(
    path: str | Path,
    sample_rate: int,
    *,
    min_duration: float = 0.0,
    reject_silent: bool = True,
    silence_rms: float = 1e-5,
) -> np.ndarray:
    """Decode ``path`` to a mono float32 waveform at ``sample_rate`` (whole file; see ``iter_audio`` for blocks).

    Raises:
        AudioReadError: the file is missing, unreadable (``corrupt``/``unsupported``), has no samples (``empty``),
            has non-finite samples, is shorter than ``min_duration`` seconds (``too_short``) or is digital
            silence (``silent``).
    """
    check = ClipCheck(path, sample_rate, min_duration, reject_silent, silence_rms)
    blocks = []
    for block in iter_audio(path, sample_rate):
        check.add(block)
        blocks.append(block)
    check.finish()
    return np.ascontiguousarray(np.concatenate(blocks), dtype=np.float32)


def audio_info(path: str | Path) -> tuple[float, int, int]:
    """(duration in seconds, sample rate, channels) from the file header, without decoding."""
    path = Path(path)
    _check_file(path)
    try:
        info = sf.info(str(path))
    except Exception as err:
        if path.suffix.lower() in SNDFILE_EXTENSIONS:
            raise AudioReadError(path, "corrupt", _first_line(err)) from err
        try:
            import av
        except ImportError:
            raise AudioReadError(path, "unsupported", f"{_first_line(err)}; {PYAV_HINT}") from err
        try:
            with av.open(str(path)) as c:
                s = c.streams.audio[0]
                dur = float(c.duration / 1e6) if c.duration else float(s.duration * s.time_base)
                return dur, int(s.rate), int(s.channels)
        except Exception as err2:
            raise AudioReadError(path, "corrupt", _first_line(err2)) from err2
    duration = float(info.duration)
    if path.suffix.lower() in COUNTED_EXTENSIONS:
        decoded = _decoded_frames(path) / info.samplerate
        if abs(decoded - duration) > max(0.05, 0.01 * duration):
            log.warning("%s: the header says %.2f s but %.2f s decode (a truncated or damaged file?); recording "
                        "%.2f s", path, duration, decoded, decoded)
        duration = decoded
    return duration, int(info.samplerate), int(info.channels)


def _decoded_frames(path: Path) -> int:
    """Frames libsndfile decodes from ``path`` (read in blocks, never held whole)."""
    frames = 0
    try:
        with sf.SoundFile(str(path)) as f:
            while True:
                n = len(f.read(1 << 16, dtype="float32", always_2d=True))
                if not n:
                    return frames
                frames += n
    except Exception as err:  # a decode error in the middle of the file
        raise AudioReadError(path, "corrupt", _first_line(err)) from err
