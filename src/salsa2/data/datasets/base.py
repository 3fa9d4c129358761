"""What every dataset preparer returns, and the one place clips become rows of the common tables."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import pandas as pd

from salsa2.audio.decode import AudioReadError, audio_info
from salsa2.data.tables import SPLITS, TableError
from salsa2.data.text_norm import clean_caption

REJECT_COLUMNS = ["audio_id", "path", "reason", "detail"]


@dataclass
class Prepared:
    """The audio and captions tables of one dataset (``salsa2.data.tables`` schema) and the clips left out."""

    audio: pd.DataFrame
    captions: pd.DataFrame
    rejects: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=REJECT_COLUMNS))


class Clip(NamedTuple):
    """One clip as a dataset publishes it: id, split, file and its captions as published (raw)."""

    audio_id: str
    split: str
    path: Path
    captions: list[str]


def reject(audio_id: str, path: str | Path, reason: str, detail: str = "") -> dict:
    return {"audio_id": audio_id, "path": str(path), "reason": reason, "detail": detail}


def prepare_clips(clips: Iterable[Clip], dataset: str, source: str, rejects: Iterable[dict] = ()) -> Prepared:
    """Clips -> tables. The header of every file is read: missing or unreadable files go to ``rejects``
    (reason ``missing``/``corrupt``), clips without a non-empty caption too (``no_caption``); the audio
    itself is decoded later by ``features.build_cache``, which rejects empty, silent and too-short clips."""
    audio_rows: list[dict] = []
    caption_rows: list[dict] = []
    rejected = list(rejects)
    seen: set[str] = set()
    for clip in clips:
        if clip.split not in SPLITS:
            raise TableError(f"{source}: clip {clip.audio_id!r} has split {clip.split!r}; use one of {SPLITS}")
        if clip.audio_id in seen:
            raise TableError(f"{source}: clip {clip.audio_id!r} is listed twice; merge its captions into one entry")
        seen.add(clip.audio_id)
        texts = [(raw, clean_caption(raw)) for raw in clip.captions]
        texts = [(raw, text) for raw, text in texts if text]
        if not texts:
            rejected.append(reject(clip.audio_id, clip.path, "no_caption", f"no non-empty caption in {source}"))
            continue
        try:
            if not clip.path.exists():
                raise AudioReadError(clip.path, "missing", f"listed in {source} but not on disk")
            duration, sr, channels = audio_info(clip.path)
        except AudioReadError as err:
            rejected.append(reject(clip.audio_id, clip.path, err.reason, err.detail))
            continue
        audio_rows.append({"audio_id": clip.audio_id, "dataset": dataset, "split": clip.split,
                           "path": str(clip.path), "duration": duration, "sample_rate": sr, "channels": channels})
        for i, (raw, text) in enumerate(texts):
            caption_rows.append({"caption_id": f"{clip.audio_id}#{i}", "audio_id": clip.audio_id, "index": i,
                                 "text": text, "raw_text": raw})
    return Prepared(
        pd.DataFrame(audio_rows, columns=["audio_id", "dataset", "split", "path", "duration", "sample_rate",
                                          "channels"]),
        pd.DataFrame(caption_rows, columns=["caption_id", "audio_id", "index", "text", "raw_text"]),
        pd.DataFrame(rejected, columns=REJECT_COLUMNS),
    )
