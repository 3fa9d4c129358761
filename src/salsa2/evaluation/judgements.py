"""Multi-relevance judgements (DCASE 2025 task 6): several relevant clips per caption query.

File format (CSV): ``caption`` (the query, as in the caption file), ``file`` (the clip it was written for,
relative to the dataset folder), ``relevant`` (';'-separated files of every clip that matches the caption,
the own clip included). The demo writes one for its test split (``data/demo/relevance_test.csv``).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from salsa2.data.tables import read_tables
from salsa2.data.text_norm import clean_caption

log = logging.getLogger(__name__)


def audio_id_of(dataset: str, file: str) -> str:
    """The clip id the folder dataset gives ``file`` (``salsa2.data.datasets.folder``)."""
    return f"{dataset}/{Path(str(file)).with_suffix('').as_posix()}"


def read_relevance(path: str | Path, dataset: str, data_dir: str | Path, caption_ids: list[str],
                   audio_ids: list[str]) -> list[tuple[int, np.ndarray]]:
    """(query caption index into ``caption_ids``, relevant clip indices into ``audio_ids``) per judged query.

    Queries are matched to captions by their clip and text. Queries whose caption is not among
    ``caption_ids`` and relevant clips not among ``audio_ids`` (rejected by feature extraction) are left out
    and counted in the log.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: relevance file not found (evaluate.relevance in params.yaml)")
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = {"caption", "file", "relevant"} - set(df.columns)
    if missing:
        raise ValueError(f"{path}: missing column(s) {sorted(missing)}; expected caption, file, relevant")
    _, captions = read_tables(data_dir)
    slots: dict[tuple[str, str], list[str]] = {}
    for cid, aid, text in captions.sort_values(["audio_id", "index"])[["caption_id", "audio_id", "text"]].itertuples(
        index=False
    ):
        slots.setdefault((aid, text), []).append(cid)
    cap_pos = {c: i for i, c in enumerate(caption_ids)}
    aud_pos = {a: i for i, a in enumerate(audio_ids)}
    queries, skipped_queries, dropped = [], 0, 0
    for row, (caption, file, relevant) in enumerate(df[["caption", "file", "relevant"]].itertuples(index=False)):
        key = (audio_id_of(dataset, file), clean_caption(caption))
        if key in slots and not slots[key]:  # a repeated caption of the clip, dropped by prepare: one query
            skipped_queries += 1
            continue
        if not slots.get(key):
            raise ValueError(f"{path} row {row + 2}: no caption {caption!r} of {file!r} in {data_dir} (dataset "
                             f"{dataset!r}); was the file written for this dataset?")
        cid = slots[key].pop(0)
        if cid not in cap_pos:
            skipped_queries += 1
            continue
        rel = [aud_pos.get(audio_id_of(dataset, f)) for f in relevant.split(";") if f]
        dropped += sum(r is None for r in rel)
        rel_idx = np.array(sorted({r for r in rel if r is not None}), dtype=np.int64)
        if len(rel_idx) == 0:
            skipped_queries += 1
            continue
        queries.append((cap_pos[cid], rel_idx))
    if skipped_queries or dropped:
        log.warning("%s: %d queries and %d relevant clips left out (not in the evaluated split)", path,
                    skipped_queries, dropped)
    if not queries:
        raise ValueError(f"{path}: none of its queries is in the evaluated split")
    return queries
