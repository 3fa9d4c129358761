"""Multi-relevance judgements (DCASE 2025 task 6): several relevant clips per caption query.

File format (CSV): ``caption`` (the query, as in the caption file), ``file`` (the clip it was written for,
relative to the dataset folder), ``relevant`` (a JSON list of the files of every clip that matches the caption,
the own clip included: any character may occur in a file name, Clotho's hold ``&#39;`` and ``&amp;``). The demo
writes one for its test split (``data/demo/relevance_test.csv``).

The DCASE 2025 task 6 judgements (``metadata_eval.csv`` of github:CPJKU/dcase2025_task6_baseline, ``resources/``:
``query, audio_filenames``, a Python list of Clotho evaluation file names per query, 1037 queries) are converted
by ``from_dcase2025``; stage prepare writes either kind as this format (``write_judgements``).
"""

from __future__ import annotations

import ast
import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from salsa2.data.tables import read_tables
from salsa2.data.text_norm import clean_caption
from salsa2.utils.errors import UserError
from salsa2.utils.fsutil import atomic_path

log = logging.getLogger(__name__)


def audio_id_of(dataset: str, file: str) -> str:
    """The clip id the folder dataset gives ``file`` (``salsa2.data.datasets.folder``)."""
    return f"{dataset}/{Path(str(file)).with_suffix('').as_posix()}"


COLUMNS = ("caption", "file", "relevant")
DCASE2025_COLUMNS = ("query", "audio_filenames")


def encode_relevant(files: list[str]) -> str:
    """The ``relevant`` cell: a JSON list (no separator a file name could contain)."""
    return json.dumps(list(files), ensure_ascii=False)


def decode_relevant(value: str, path: str | Path, row: int) -> list[str]:
    """The file names of a ``relevant`` cell (``row``: the file's line number, for the error)."""
    try:
        files = json.loads(value)
    except json.JSONDecodeError:
        files = None
    if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
        raise UserError(f"{path} row {row}: relevant {value[:80]!r} is not a JSON list of file names; write e.g. "
                        '["a.wav", "b.wav"]')
    return files


def from_dcase2025(path: str | Path, dataset: str, data_dir: str | Path, split: str = "test") -> pd.DataFrame:
    """The DCASE 2025 task 6 judgements (``query, audio_filenames``) as this module's table, against the prepared
    tables in ``data_dir``: each query is the first ``split`` caption of ``dataset`` with its text (as the task's
    baseline picks ``captions.index(query)``), file names are matched by name to the ``split`` clips of
    ``dataset`` (Clotho: ``evaluation/<name>``); names matching no clip stay as given (left out at evaluation,
    counted in the log)."""
    path = Path(path)
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    audio, captions = read_tables(data_dir)
    prefix = f"{dataset}/"
    clips = audio.loc[(audio["split"] == split) & audio["audio_id"].str.startswith(prefix), ["audio_id", "path"]]
    file_of = {a: a[len(prefix):] + Path(str(p)).suffix for a, p in clips.itertuples(index=False)}
    by_name = {Path(a[len(prefix):]).name: f for a, f in file_of.items()}
    owner: dict[str, str] = {}
    caps = captions.loc[captions["audio_id"].isin(set(file_of))].sort_values(["audio_id", "index"])
    for aid, text in caps[["audio_id", "text"]].itertuples(index=False):
        owner.setdefault(text, file_of[aid])
    rows = []
    for row, (query, names) in enumerate(df[list(DCASE2025_COLUMNS)].itertuples(index=False), start=2):
        try:
            files = ast.literal_eval(names)
        except (ValueError, SyntaxError):
            files = None
        if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
            raise UserError(f"{path} row {row}: audio_filenames {names[:80]!r} is not a Python list of file names")
        own = owner.get(clean_caption(query))
        if own is None:
            raise UserError(f"{path} row {row}: query {query!r} is no {split} caption of dataset {dataset!r} in "
                            f"{data_dir}; set evaluate.relevance_dataset to the dataset the judgements belong to")
        relevant = [by_name.get(Path(f).stem, f) for f in files]
        rows.append({"caption": query, "file": own, "relevant": encode_relevant(relevant)})
    return pd.DataFrame(rows, columns=list(COLUMNS))


def write_judgements(src: str | Path, dataset: str, data_dir: str | Path, out: str | Path) -> int:
    """``src`` (this module's CSV or the DCASE 2025 ``metadata_eval.csv``) checked and written to ``out`` in this
    module's format; the number of queries."""
    src = Path(src)
    df = pd.read_csv(src, dtype=str, keep_default_na=False)
    if set(DCASE2025_COLUMNS) <= set(df.columns):
        table = from_dcase2025(src, dataset, data_dir)
    elif set(COLUMNS) <= set(df.columns):
        table = df[list(COLUMNS)]
        for row, value in enumerate(table["relevant"], start=2):
            decode_relevant(value, src, row)
    else:
        raise UserError(f"{src}: columns {list(df.columns)}; expected {', '.join(COLUMNS)} (salsa2) or "
                        f"{', '.join(DCASE2025_COLUMNS)} (DCASE 2025 task 6 metadata_eval.csv)")
    with atomic_path(out) as tmp:
        table.to_csv(tmp, index=False)
    return len(table)


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
        rel = [aud_pos.get(audio_id_of(dataset, f)) for f in decode_relevant(relevant, path, row + 2)]
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
