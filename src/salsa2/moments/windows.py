"""Per-window audio embeddings of a long recording: the sliding-window view that moment retrieval scores.

A recording of duration ``d`` is cut into windows of ``window`` seconds every ``hop`` seconds: window ``k``
covers ``[k * hop, min(k * hop + window, d)]`` for ``k = 0 .. max(0, ceil((d - window) / hop))``, so the windows
reach the end of the file (the last one may be shorter) and a recording shorter than one window gives a single
window ``[0, d]``. Each window is embedded as the model embeds a clip (``salsa2.search.inference.embed_mels``),
from the slice of the recording's log-mel under it: the log-mel is computed once for the whole file, in blocks
(``salsa2.audio.logmel_stream``), so neighbouring windows share frames and the waveform is never held whole
(frontends that resample inside the frontend, ``load_rate``, decode the file whole: ``load_logmel``). Memory is
the float16 log-mel (92 MB for two hours of the 64-band, 10 ms-hop demo frontend) plus one batch of windows.
This is sliding-window clip retrieval, the baseline AM-DETR compares against (DCASE 2026 task 6).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from salsa2.audio.decode import AudioReadError, ClipCheck, audio_info, iter_audio
from salsa2.audio.frontends import LogMel, compute_logmel
from salsa2.audio.logmel_stream import load_logmel, stream_logmel
from salsa2.search.inference import MEL_DTYPE, SearchModel, as_waveform, embed_mels

DEFAULT_WINDOW = 4.0  # seconds; measured on a long-recording set of the demo (docs/moments.md, "Defaults")
DEFAULT_HOP = 1.0  # seconds
MIN_DURATION = 0.1  # seconds; shorter recordings are rejected (too_short), as `salsa2 index` does
SILENCE_RMS = 1e-5  # a whole recording below this RMS is rejected (silent), as `salsa2 index` does
WINDOWS_PER_CALL = 256  # windows sliced and embedded per embed_mels call (bounds the float32 batch copies)


@dataclass
class WindowEmbeddings:
    """The windows of one recording and their embeddings.

    Attributes:
        starts: (n,) float64 window starts in seconds.
        ends: (n,) float64 window ends in seconds (``starts + window``, the last one clipped to the duration).
        emb: (n, D) float32 L2-normalised audio embeddings.
    """

    starts: np.ndarray
    ends: np.ndarray
    emb: np.ndarray

    def __len__(self) -> int:
        return len(self.starts)


def check_window(window: float, hop: float) -> None:
    """Window and hop must be positive finite seconds (one line naming the value otherwise)."""
    for name, v in (("window", window), ("hop", hop)):
        if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
            raise ValueError(f"{name} = {v!r} seconds; give a positive number such as --{name} "
                             f"{DEFAULT_WINDOW if name == 'window' else DEFAULT_HOP}")


def window_bounds(duration: float, window: float, hop: float) -> tuple[np.ndarray, np.ndarray]:
    """(starts, ends) in seconds of the windows of a recording of ``duration`` seconds (module docstring)."""
    check_window(window, hop)
    if duration <= window:
        return np.zeros(1), np.array([float(duration)])
    n = math.ceil((duration - window) / hop - 1e-9) + 1
    starts = np.arange(n, dtype=np.float64) * hop
    return starts, np.minimum(starts + window, duration)


def _file_logmel(model: SearchModel, path: str | Path, min_duration: float) -> tuple[np.ndarray, float]:
    """(float16 log-mel, duration in s) of the whole file, the waveform decoded and transformed in blocks.

    A ``frames_past_end`` frontend is streamed too: its frames past the end are the STFT of the zero-padded
    file, so the file's blocks plus one block of ``tail_frames`` hops of zeros through the same frontend without
    ``frames_past_end`` give exactly its frames. A ``load_rate`` frontend resamples the whole file (``load_logmel``).
    """
    cfg = model.frontend
    if cfg.load_rate:
        return load_logmel(path, cfg, LogMel(cfg), min_duration=min_duration, dtype=MEL_DTYPE)
    plain = dataclasses.replace(cfg, frames_past_end=False)
    check = ClipCheck(path, cfg.sample_rate, min_duration, True, SILENCE_RMS)
    try:
        expected = cfg.num_frames(int(audio_info(path)[0] * cfg.sample_rate))
    except AudioReadError:
        expected = 0  # iter_audio reports the reason
    blocks = iter_audio(path, cfg.sample_rate)
    if cfg.tail_frames:
        blocks = itertools.chain(blocks, [np.zeros(cfg.tail_frames * cfg.hop_length, np.float32)])
    checked = (check.add(b) or b for b in blocks)
    mel = stream_logmel(checked, plain, LogMel(plain), dtype=MEL_DTYPE, expected_frames=expected)
    check.samples -= cfg.tail_frames * cfg.hop_length  # the zero block is not audio
    check.finish()
    finite = np.isfinite(mel).all(axis=0)
    if not finite.all():
        t = int(np.flatnonzero(~finite)[0]) / cfg.frames_per_second
        raise AudioReadError(path, "non_finite", f"log-mel has NaN/inf values from {t:.1f} s (samples out of range)")
    return mel, check.duration


def _array_logmel(model: SearchModel, audio: np.ndarray, sample_rate: int | None,
                  min_duration: float) -> tuple[np.ndarray, float]:
    cfg = model.frontend
    wav = as_waveform(audio, cfg.input_rate, sample_rate)
    if len(wav) < min_duration * cfg.input_rate:
        raise ValueError(f"the waveform is {len(wav) / cfg.input_rate:.3f} s long, shorter than {min_duration} s; "
                         "give a longer recording")
    if not np.isfinite(wav).all():
        raise ValueError("the waveform has NaN/inf samples; give finite samples in [-1, 1]")
    if float(np.sqrt(np.mean(wav.astype(np.float64) ** 2))) < SILENCE_RMS:
        raise ValueError(f"the waveform is silent (RMS < {SILENCE_RMS}); there is no sound to find in it")
    return compute_logmel(wav, cfg, LogMel(cfg)).astype(MEL_DTYPE), len(wav) / cfg.input_rate


def window_embeddings(model: SearchModel, audio: str | Path | np.ndarray, window: float, hop: float,
                      sample_rate: int | None = None, batch_size: int = 16,
                      min_duration: float = MIN_DURATION) -> WindowEmbeddings:
    """Embeddings of the sliding windows (``window`` s every ``hop`` s) of one recording.

    Args:
        model: a loaded checkpoint (``salsa2.search.inference.load_model``).
        audio: an audio file, or a mono waveform at ``sample_rate`` (default: the model's input rate).
        window, hop: seconds (module docstring for where the windows fall).
        batch_size: windows per encoder call.
        min_duration: shorter recordings are rejected.

    Raises:
        AudioReadError: a file cannot be decoded, is shorter than ``min_duration`` (``too_short``) or silent.
        ValueError: a bad window/hop, or a waveform that is not mono, too short, non-finite or silent.
    """
    check_window(window, hop)
    if isinstance(audio, (str, Path)):
        mel, duration = _file_logmel(model, audio, min_duration)
    else:
        mel, duration = _array_logmel(model, np.asarray(audio), sample_rate, min_duration)
    return embed_windows(model, mel, duration, window, hop, batch_size)


def embed_windows(model: SearchModel, mel: np.ndarray, duration: float, window: float, hop: float,
                  batch_size: int = 16) -> WindowEmbeddings:
    """The windows of a recording given as its whole log-mel (``model.frontend``'s frames, tail frames included)."""
    cfg = model.frontend
    tail = cfg.tail_frames
    audio_frames = mel.shape[1] - tail
    if audio_frames < 1:
        raise ValueError(f"a log-mel of {mel.shape[1]} frames has no audio frames; give a longer recording")
    fps = cfg.frames_per_second
    starts, ends = window_bounds(duration, window, hop)
    f0 = np.minimum(np.round(starts * fps).astype(np.int64), audio_frames - 1)
    f1 = np.round(ends * fps).astype(np.int64)
    f1[-1] = audio_frames  # the last window keeps the file's last frames
    f1 = np.clip(f1, f0 + 1, audio_frames)
    emb = np.empty((len(starts), model.embed_dim), np.float32)
    for s in range(0, len(starts), WINDOWS_PER_CALL):
        e = min(s + WINDOWS_PER_CALL, len(starts))
        # tail frames of an inner window are the following audio; the last window gets the file's own
        mels = [mel[:, a : b + tail] for a, b in zip(f0[s:e], f1[s:e])]
        emb[s:e] = embed_mels(model, mels, batch_size=batch_size)
    return WindowEmbeddings(starts, ends, emb)
