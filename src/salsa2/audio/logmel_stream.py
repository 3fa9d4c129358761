"""Log-mel of a long file in blocks: bounded memory, the same frames as ``compute_logmel`` of the whole file.

Frame ``t`` of the centred STFT covers samples ``t*hop - n_fft/2 .. t*hop + n_fft/2`` (plus one sample of
pre-emphasis context), so a segment that starts ``P`` samples (a multiple of the hop, ``P > n_fft/2 + 1``)
before the first wanted frame and ends ``P`` samples after the last one yields those frames exactly; the first
segment starts at sample 0 and the last ends at the file's end, so the reflect padding at both edges is the
whole file's (``frontends.LogMel``).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch

from salsa2.audio.decode import AudioReadError, ClipCheck, audio_info, iter_audio, load_audio
from salsa2.audio.frontends import FrontendConfig, LogMel, compute_logmel

BLOCK_FRAMES = 6000  # frames computed per STFT call (60 s at a 10 ms hop)


def _context(cfg: FrontendConfig) -> int:
    need = cfg.n_fft // 2 + 2
    return -(-need // cfg.hop_length) * cfg.hop_length


def stream_logmel(blocks: Iterable[np.ndarray], cfg: FrontendConfig, module: LogMel | None = None, *,
                  block_frames: int = BLOCK_FRAMES, dtype: type = np.float32,
                  check: ClipCheck | None = None, expected_frames: int = 0) -> np.ndarray:
    """(n_mels, frames) log-mel of the waveform given as consecutive mono blocks at ``cfg.sample_rate``.

    Only about ``block_frames`` hops of audio are held at once; ``check`` (if given) sees every block.
    ``expected_frames`` (from the file header): the output is filled in place, not concatenated (half the peak).
    """
    module = module or LogMel(cfg)
    hop, pad = cfg.hop_length, _context(cfg)
    buf = np.zeros(0, np.float32)
    buf_start = 0  # absolute sample index of buf[0]
    t0 = 0  # next frame to emit
    pieces: list[np.ndarray] = []
    out = np.empty((cfg.n_mels, expected_frames + 64), dtype) if expected_frames > 0 else None
    filled = 0

    def run(seg_start: int, seg: np.ndarray, first: int, count: int) -> None:
        nonlocal filled
        with torch.no_grad():
            mel = module(torch.from_numpy(np.ascontiguousarray(seg))[None])[0].numpy()
        off = (first * hop - seg_start) // hop
        part = mel[:, off : off + count]
        if out is not None and not pieces and filled + count <= out.shape[1]:
            out[:, filled : filled + count] = part
            filled += count
        else:  # no (or a too small) estimate: collect the pieces
            pieces.append(part.astype(dtype, copy=True))

    for block in blocks:
        if check is not None:
            check.add(block)
        buf = np.concatenate([buf, block]) if len(buf) else np.asarray(block, np.float32)
        avail = buf_start + len(buf)
        t1 = (avail - pad - 1) // hop + 1 if avail > pad else 0
        while t1 - t0 >= block_frames:
            end = t0 + block_frames
            a = 0 if t0 == 0 else t0 * hop - pad
            b = (end - 1) * hop + pad + 1
            run(a, buf[a - buf_start : b - buf_start], t0, end - t0)
            t0 = end
            keep = t0 * hop - pad
            buf, buf_start = buf[keep - buf_start :], keep
    total = buf_start + len(buf)
    frames = cfg.num_frames(total)
    if frames > t0:
        a = 0 if t0 == 0 else t0 * hop - pad
        run(a, buf[a - buf_start :], t0, frames - t0)
    if out is not None and not pieces:
        return out[:, :filled]
    head = [out[:, :filled]] if out is not None and filled else []
    return np.concatenate(head + pieces, axis=1) if len(head + pieces) > 1 else pieces[0]


def load_logmel(path: str | Path, cfg: FrontendConfig, module: LogMel | None = None, *, min_duration: float = 0.0,
                reject_silent: bool = True, dtype: type = np.float32) -> tuple[np.ndarray, float]:
    """(log-mel, duration in s) of an audio file decoded and transformed in blocks (peak memory ~ the log-mel).

    Raises:
        AudioReadError: as ``audio.load_audio``, and ``non_finite`` when the log-mel has NaN/inf values.
    """
    if cfg.load_rate or cfg.tail_frames:
        # The paper frontends resample inside the frontend (load_rate) or add frames past the clip's end: their
        # frames are not local to a block, so the clip is decoded whole (at most ~1 GB for 2 h at 32 kHz).
        wav = load_audio(path, cfg.input_rate, min_duration=min_duration, reject_silent=reject_silent)
        mel, duration = compute_logmel(wav, cfg, module).astype(dtype, copy=False), len(wav) / cfg.input_rate
        del wav
    else:
        check = ClipCheck(path, cfg.sample_rate, min_duration, reject_silent, 1e-5)
        try:
            expected = cfg.num_frames(int(audio_info(path)[0] * cfg.sample_rate))
        except AudioReadError:
            expected = 0  # iter_audio reports the reason
        mel = stream_logmel(iter_audio(path, cfg.sample_rate), cfg, module, dtype=dtype, check=check,
                            expected_frames=expected)
        check.finish()
        duration = check.duration
    finite = np.isfinite(mel).all(axis=0)
    if not finite.all():
        t = int(np.flatnonzero(~finite)[0]) / cfg.frames_per_second
        raise AudioReadError(path, "non_finite", f"log-mel has NaN/inf values from {t:.1f} s (samples out of range)")
    return mel, duration
