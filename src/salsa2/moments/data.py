"""Moment-retrieval annotations: Clotho-Moment and CASTELLA in their published formats (DCASE 2026 task 6).

Two formats are read:

* **jsonl** (``*.jsonl``), one query per line, as line/lighthouse publishes both datasets
  (``data/clotho_moment/clotho_moment_{train,val,test}_release.jsonl``,
  ``data/castella/castella_{train,val,test}_release.jsonl``) and the task baseline reads them::

      {"qid": "32694", "query": "A toilet flushes ...", "duration": 60, "vid": "Singapore_0.0_60.0",
       "relevant_windows": [[41.1, 48.1]], "fg_dB": 0.74}

  ``qid`` names the query, ``vid`` the recording, ``duration`` its length in seconds, ``relevant_windows`` the
  ground-truth ``[start, end]`` seconds (one for Clotho-Moment; one or more for CASTELLA). Other keys (Clotho-
  Moment's ``fg_dB``, the foreground's level over the background in dB) are kept in ``MomentQuery.extra``.
  salsa2's long-recording demo (``salsa2.moments.demo``) writes this format too.
* **CASTELLA json** (``*.json``), as line/CASTELLA publishes it (``json/en/{train,val,test}.json``): a list of
  recordings ``{"yid", "global_caption", "duration", "num_moments", "moments": [{"local_caption",
  "timestamps": [[start, end], ...]}, ...]}``. Moment ``k`` (from 1) of recording ``yid`` becomes query
  ``qid = "<yid>_<k>"`` with ``query`` = its local caption and ``vid`` = ``yid``: the ids of lighthouse's
  CASTELLA jsonl (the jsonl's durations are those of the released audio, which may be a second shorter).

Audio: one file per recording named by its ``vid`` (``<vid>.wav``, ``.flac``, ...) in one folder, the name the
published CLAP features carry (``features/<dataset>/clap/<vid>.npz``); :func:`audio_file` finds it.

Bad input (unreadable JSON, a missing or mistyped field, a window with end < start, a repeated qid) is one
line naming the file, the line (jsonl) or recording (json) and the fix; nothing is returned half-read.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from salsa2.audio.decode import SNDFILE_EXTENSIONS
from salsa2.utils.errors import UserError
from salsa2.utils.fsutil import atomic_path

JSONL_KEYS = ("qid", "query", "duration", "vid", "relevant_windows")  # the order lighthouse's files use


class AnnotationError(UserError, ValueError):
    """A moment annotation file that cannot be read as published (names the file and line or recording)."""


@dataclass(frozen=True)
class MomentQuery:
    """One text query about one recording and the windows where it happens.

    Attributes:
        qid: the query's id (unique in its file).
        query: the text.
        vid: the recording's id (its audio file's name without extension).
        duration: the recording's length in seconds.
        windows: ground-truth ``(start, end)`` seconds, as annotated (CASTELLA may list a window twice).
        extra: other keys of the annotation row (Clotho-Moment's ``fg_dB``), kept as they were.
    """

    qid: str
    query: str
    vid: str
    duration: float
    windows: tuple[tuple[float, float], ...]
    extra: dict = field(default_factory=dict, compare=False)

    def row(self) -> dict:
        """The jsonl row (lighthouse's key order, extra keys after)."""
        return {"qid": self.qid, "query": self.query, "duration": self.duration, "vid": self.vid,
                "relevant_windows": [list(w) for w in self.windows], **self.extra}


def _number(value: object, what: str, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise AnnotationError(f"{where}: {what} must be a number of seconds, got {value!r}")
    return value


def _windows(value: object, where: str) -> tuple[tuple[float, float], ...]:
    if not isinstance(value, list) or not value:
        raise AnnotationError(f"{where}: relevant windows must be a non-empty list of [start, end] seconds, "
                              f"got {value!r}")
    out = []
    for w in value:
        if not isinstance(w, list) or len(w) != 2:
            raise AnnotationError(f"{where}: a window must be [start, end] seconds, got {w!r}")
        start, end = (_number(v, "a window bound", where) for v in w)
        if start < 0 or end < start:
            raise AnnotationError(f"{where}: window {w!r} needs 0 <= start <= end; fix or drop it")
        out.append((start, end))
    return tuple(out)


def _query(row: object, where: str) -> MomentQuery:
    if not isinstance(row, dict):
        raise AnnotationError(f"{where}: expected a JSON object with keys {', '.join(JSONL_KEYS)}, "
                              f"got {type(row).__name__}")
    missing = [k for k in JSONL_KEYS if k not in row]
    if missing:
        raise AnnotationError(f"{where}: missing key(s) {', '.join(missing)}; each row needs "
                              f"{', '.join(JSONL_KEYS)}")
    qid, query, vid = row["qid"], row["query"], row["vid"]
    if isinstance(qid, bool) or not isinstance(qid, (str, int)):
        raise AnnotationError(f"{where}: qid must be a string or integer, got {qid!r}")
    for name, v in (("query", query), ("vid", vid)):
        if not isinstance(v, str) or not v.strip():
            raise AnnotationError(f"{where}: {name} must be a non-empty string, got {v!r}")
    duration = _number(row["duration"], "duration", where)
    if duration <= 0:
        raise AnnotationError(f"{where}: duration must be positive seconds, got {duration!r}")
    extra = {k: v for k, v in row.items() if k not in JSONL_KEYS}
    return MomentQuery(str(qid), query, vid, duration, _windows(row["relevant_windows"], where), extra)


def _unique(queries: Sequence[MomentQuery], wheres: Sequence[str]) -> list[MomentQuery]:
    seen: dict[str, str] = {}
    for q, where in zip(queries, wheres):
        if q.qid in seen:
            raise AnnotationError(f"{where}: qid {q.qid!r} repeats {seen[q.qid]}; qids must be unique")
        seen[q.qid] = where
    return list(queries)


def jsonl_rows(path: str | Path, error: type[Exception]) -> Iterator[tuple[str, object]]:
    """``(where, row)`` for each non-empty line of a jsonl file, ``where`` = ``path:line``; a line that is not JSON
    raises ``error`` naming it."""
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            where = f"{path}:{n}"
            try:
                yield where, json.loads(line)
            except json.JSONDecodeError as err:
                raise error(f"{where}: not a JSON object ({err.msg} at column {err.colno}); each line must be "
                            "one query's JSON object") from None


def read_moment_jsonl(path: str | Path) -> list[MomentQuery]:
    """Queries of a jsonl annotation file (lighthouse's Clotho-Moment / CASTELLA release format)."""
    queries, wheres = [], []
    for where, row in jsonl_rows(path, AnnotationError):
        queries.append(_query(row, where))
        wheres.append(where)
    return _unique(queries, wheres)


def read_castella_json(path: str | Path) -> list[MomentQuery]:
    """Queries of CASTELLA's own json (line/CASTELLA ``json/<lang>/<split>.json``): one per local caption."""
    path = Path(path)
    try:
        recordings = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise AnnotationError(f"{path}: not JSON ({err.msg} at line {err.lineno}, column {err.colno})") from None
    if not isinstance(recordings, list):
        raise AnnotationError(f"{path}: expected a JSON list of recordings (CASTELLA json), got "
                              f"{type(recordings).__name__}")
    queries, wheres = [], []
    for i, rec in enumerate(recordings):
        where = f"{path}: recording {i}"
        if not isinstance(rec, dict) or not all(k in rec for k in ("yid", "duration", "moments")):
            raise AnnotationError(f"{where}: needs keys yid, duration, moments (CASTELLA json), got "
                                  f"{sorted(rec) if isinstance(rec, dict) else type(rec).__name__}")
        where = f"{path}: recording {i} ({rec['yid']!r})"
        if not isinstance(rec["moments"], list):
            raise AnnotationError(f"{where}: moments must be a list, got {rec['moments']!r}")
        for k, moment in enumerate(rec["moments"], 1):
            if not isinstance(moment, dict) or not {"local_caption", "timestamps"} <= set(moment):
                raise AnnotationError(f"{where}, moment {k}: needs keys local_caption, timestamps")
            row = {"qid": f"{rec['yid']}_{k}", "query": moment["local_caption"], "duration": rec["duration"],
                   "vid": rec["yid"], "relevant_windows": moment["timestamps"]}
            queries.append(_query(row, f"{where}, moment {k}"))
            wheres.append(f"{where}, moment {k}")
    return _unique(queries, wheres)


def read_moments(path: str | Path) -> list[MomentQuery]:
    """Queries of an annotation file: ``.jsonl`` (lighthouse's release format) or ``.json`` (CASTELLA's own)."""
    path = Path(path)
    if not path.is_file():
        raise AnnotationError(f"{path}: no such annotation file; give a .jsonl (Clotho-Moment, CASTELLA as "
                              "lighthouse publishes them) or CASTELLA's .json")
    if path.suffix == ".jsonl":
        return read_moment_jsonl(path)
    if path.suffix == ".json":
        return read_castella_json(path)
    raise AnnotationError(f"{path}: unknown annotation format {path.suffix!r}; give .jsonl or CASTELLA's .json")


def write_moment_jsonl(path: str | Path, queries: Iterable[MomentQuery]) -> None:
    """Write queries as jsonl (lighthouse's release format), atomically."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        for q in queries:
            f.write(json.dumps(q.row()) + "\n")


def ground_truth(queries: Iterable[MomentQuery]) -> dict[str, list[list[float]]]:
    """qid -> [[start, end], ...]: what ``salsa2.moments.metrics`` scores against."""
    return {q.qid: [list(w) for w in q.windows] for q in queries}


def audio_file(root: str | Path, vid: str, extensions: Sequence[str] = SNDFILE_EXTENSIONS) -> Path:
    """The audio file of recording ``vid`` in folder ``root`` (``<root>/<vid><ext>``, the first extension found)."""
    root = Path(root)
    for ext in extensions:
        path = root / f"{vid}{ext}"
        if path.is_file():
            return path
    raise AnnotationError(f"{root}: no audio file for recording {vid!r} (looked for {vid}"
                          f"{{{','.join(extensions)}}}); put one file per recording there, named by its vid")
