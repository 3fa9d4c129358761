"""The DCASE 2026 task 6 submission file: one jsonl row per query,
``{"qid", "query", "vid", "pred_relevant_windows": [[start, end, score], ...]}``, windows best first.

The format of the task's evaluation (line/lighthouse ``standalone_eval``, QVHighlights-style): its mAP reads a
query's first ten windows, its R1 the first one (``salsa2.moments.metrics``), so rows list windows by score,
descending, and every query has at least one window (the evaluation stops on an empty list).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from pathlib import Path

from salsa2.moments.data import MomentQuery, jsonl_rows
from salsa2.moments.detect import Moment
from salsa2.utils.errors import UserError
from salsa2.utils.fsutil import atomic_path

SUBMISSION_KEYS = ("qid", "query", "vid", "pred_relevant_windows")


class SubmissionError(UserError, ValueError):
    """A submission file that is not the task's format (names the file and line)."""


def submission_row(query: MomentQuery, moments: Sequence[Moment]) -> dict:
    """The row of one query: its moments best first, clipped to the recording."""
    if not moments:
        raise ValueError(f"query {query.qid!r}: no moment to submit; the task's evaluation needs at least one window")
    ranked = sorted(moments, key=lambda m: -m.score)
    windows = [[max(0.0, float(m.start)), min(float(query.duration), float(m.end)), float(m.score)] for m in ranked]
    return {"qid": query.qid, "query": query.query, "vid": query.vid, "pred_relevant_windows": windows}


def write_submission(path: str | Path, rows: Iterable[dict]) -> None:
    """Write submission rows as jsonl, atomically."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps({k: row[k] for k in SUBMISSION_KEYS}) + "\n")


def read_submission(path: str | Path) -> dict[str, list[list[float]]]:
    """qid -> [[start, end, score], ...] in the listed order, from a submission jsonl (checked row by row)."""
    out: dict[str, list[list[float]]] = {}
    for where, row in jsonl_rows(path, SubmissionError):
        if not isinstance(row, dict) or "qid" not in row or "pred_relevant_windows" not in row:
            raise SubmissionError(f"{where}: needs keys qid and pred_relevant_windows")
        windows = row["pred_relevant_windows"]
        if not isinstance(windows, list) or not all(
                isinstance(w, list) and len(w) == 3 and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                            and math.isfinite(v) for v in w) for w in windows):
            raise SubmissionError(f"{where}: pred_relevant_windows must be a list of [start, end, score] numbers")
        qid = str(row["qid"])
        if qid in out:
            raise SubmissionError(f"{where}: qid {qid!r} appears twice; give one row per query")
        out[qid] = [[float(v) for v in w] for w in windows]
    return out
