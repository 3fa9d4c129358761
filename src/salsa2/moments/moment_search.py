"""Moment search of an index with windows: a text query -> ranked (file, start, end, score) across the library.

1. Every window of every file is scored by the cosine of its embedding with the query (``salsa2.moments.windows``;
   several paraphrases averaged and several models as an ensemble, the mean of their cosines, exactly as clip
   search does: ``salsa2.search.query``), in blocks of ``BLOCK`` windows.
2. Each file's scores give its moments (``salsa2.moments.detect.find_moments``).
3. The moments of all files are ranked by score. Files are visited in order of their best window score, and the
   visit stops once ``k`` moments are found and no remaining file's best window beats the ``k``-th: exact,
   because every method scores a moment no higher than the best window in it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from salsa2.moments.detect import DEFAULT_METHOD, Moment, find_moments, method_params
from salsa2.search.index import Index, IndexFileError, WindowTable, read_index
from salsa2.search.inference import SearchModel, embed_text
from salsa2.search.query import BLOCK, check_models, check_query, load_index_models, mean_query


@dataclass
class MomentHit:
    """One moment of one file."""

    rank: int
    path: str
    start: float
    end: float
    score: float


@dataclass
class ScoreCurve:
    """A file's window scores for the query (what ``plot_moments`` draws)."""

    path: str
    starts: np.ndarray
    ends: np.ndarray
    scores: np.ndarray


@dataclass
class MomentResult:
    """Ranked moments; ``curves`` holds the window scores of the files that have a hit."""

    query: list[str]
    models: list[str]
    method: str
    params: dict
    hits: list[MomentHit]
    curves: dict[str, ScoreCurve] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"query": self.query, "models": self.models, "method": self.method, "params": self.params,
                "moments": [asdict(h) for h in self.hits]}


def window_scores(queries: Sequence[np.ndarray], windows: Sequence[np.ndarray], block: int = BLOCK) -> np.ndarray:
    """(n_windows,) float32 mean over models of ``windows[m] @ queries[m][0]``, ``block`` windows at a time."""
    n = windows[0].shape[0]
    out = np.empty(n, np.float32)
    for s in range(0, n, block):
        e = min(s + block, n)
        out[s:e] = sum(w[s:e] @ q[0] for q, w in zip(queries, windows)) / len(queries)
    return out


def rank_moments(win: WindowTable, scores: np.ndarray, k: int, method: str = DEFAULT_METHOD,
                 params: dict | None = None) -> list[tuple[Moment, int]]:
    """The ``k`` best (moment, file row) pairs of all files given every window's score (module docstring, 2-3)."""
    found: list[tuple[Moment, int]] = []
    k = max(0, int(k))
    if not len(scores) or not k:
        return found
    best = np.maximum.reduceat(scores, win.offsets[:-1])
    for row in np.lexsort((np.arange(len(best)), -best)):
        if len(found) >= k and best[row] < found[k - 1][0].score:
            break
        a, b = win.offsets[row], win.offsets[row + 1]
        found.extend((m, int(row)) for m in find_moments(win.starts[a:b], win.ends[a:b], scores[a:b], method,
                                                         **(params or {})))
        found.sort(key=lambda t: (-t[0].score, t[1], t[0].start))
    return found[:k]


def search_moments(
    index: Index | str | Path,
    text: str | Sequence[str],
    *,
    k: int = 10,
    models: dict[str, SearchModel] | None = None,
    method: str = DEFAULT_METHOD,
    params: dict | None = None,
    block: int = BLOCK,
) -> MomentResult:
    """The ``k`` best moments for ``text`` (one query, or paraphrases whose embeddings are averaged).

    Args:
        index: an ``Index`` built with windows (``salsa2 index --windows``) or its path.
        models: loaded models by index name (default: those that built the index); a subset = that ensemble.
        method, params: the moment method and its parameters (``salsa2.moments.detect``).

    Raises:
        IndexFileError: the index has no windows.
        UserError / ValueError: an empty or word-less query, an unknown method or parameter.
    """
    index = read_index(index) if isinstance(index, (str, Path)) else index
    if index.windows is None:
        raise IndexFileError("the index has no windows; build it with `salsa2 index DIR --model CHECKPOINT "
                             "--windows` to search moments")
    params = dict(params or {})
    known = method_params(method)
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise ValueError(f"moment method {method!r} has no parameter {', '.join(unknown)}; "
                         f"it takes {', '.join(f'{p}={v}' for p, v in known.items())}")
    texts = [text] if isinstance(text, str) else list(text)
    if not texts:
        raise ValueError("empty list of query paraphrases")
    check_query(texts)
    models = check_models(index, models) if models is not None else load_index_models(index)
    names = list(models)
    win = index.windows
    queries = [mean_query(embed_text(models[n], texts)) for n in names]
    scores = window_scores(queries, [win.embeddings[n] for n in names], block)
    found = rank_moments(win, scores, k, method, params)
    hits: list[MomentHit] = []
    curves: dict[str, ScoreCurve] = {}
    for rank, (m, row) in enumerate(found, 1):
        path = index.full_path(row)
        hits.append(MomentHit(rank, path, m.start, m.end, m.score))
        if path not in curves:
            a, b = win.offsets[row], win.offsets[row + 1]
            curves[path] = ScoreCurve(path, win.starts[a:b], win.ends[a:b], scores[a:b].copy())
    return MomentResult(texts, names, method, {**known, **params}, hits, curves)
