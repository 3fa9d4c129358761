"""Moment retrieval evaluated as DCASE 2026 task 6 evaluates it: sliding-window retrieval with each model and
with ensembles, scored by R1@0.5, R1@0.7, mAP@[0.5:0.95], mAP@0.5, mAP@0.75 (``salsa2.moments.metrics``).

For each model, every recording of the annotation file is cut into windows (``salsa2.moments.windows``) and each
query scores the windows of its recording by cosine similarity (text embedding . window embedding). An
ensemble scores a window by the mean of its members' cosines, as the clip evaluation averages similarities
(Primus et al. 2024, sec. 2). Moments come from the scores by ``salsa2.moments.detect.find_moments``; a query
whose recording yields none (a flat score curve) gets its best window, since the task's evaluation needs one.
``chance``: the same with uniformly random window scores, averaged over seeded draws.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from salsa2.moments.data import MomentQuery, audio_file, ground_truth
from salsa2.moments.detect import Moment, find_moments
from salsa2.moments.metrics import as_percent, moment_metrics, moment_scores
from salsa2.moments.submission import submission_row, write_submission
from salsa2.moments.windows import window_bounds, window_embeddings
from salsa2.search.inference import embed_text, load_model
from salsa2.utils.fsutil import atomic_dir, write_json

log = logging.getLogger(__name__)


@dataclass
class WindowScores:
    """One query's scores over the windows of its recording: ``starts``, ``ends`` (n,) seconds, ``scores`` (n,)."""

    starts: np.ndarray
    ends: np.ndarray
    scores: np.ndarray


def score_windows(model_path: str | Path, queries: Sequence[MomentQuery], audio_dir: str | Path, window: float,
                  hop: float, batch_size: int = 16) -> dict[str, WindowScores]:
    """qid -> the query's cosine with every window of its recording, for the model at ``model_path``."""
    model = load_model(model_path)
    by_vid: dict[str, list[MomentQuery]] = {}
    for q in queries:
        by_vid.setdefault(q.vid, []).append(q)
    out: dict[str, WindowScores] = {}
    for vid, group in by_vid.items():
        win = window_embeddings(model, audio_file(audio_dir, vid), window, hop, batch_size=batch_size)
        text = embed_text(model, [q.query for q in group])
        sims = win.emb.astype(np.float64) @ text.astype(np.float64).T  # (windows, queries)
        for j, q in enumerate(group):
            out[q.qid] = WindowScores(win.starts, win.ends, sims[:, j])
    return out


def ensemble_scores(members: Sequence[Mapping[str, WindowScores]]) -> dict[str, WindowScores]:
    """The members' mean score per window (their windows must be the same: one window and hop)."""
    out = {}
    for qid, first in members[0].items():
        for other in members[1:]:
            if not (np.array_equal(other[qid].starts, first.starts) and np.array_equal(other[qid].ends, first.ends)):
                raise ValueError(f"query {qid!r}: ensemble members cut its recording into different windows; "
                                 "give every member the same window and hop")
        out[qid] = WindowScores(first.starts, first.ends, np.mean([m[qid].scores for m in members], axis=0))
    return out


def query_moments(scored: WindowScores, method: str, params: Mapping[str, object]) -> list[Moment]:
    """The moments of one query, best first; its best window when the method finds none."""
    moments = find_moments(scored.starts, scored.ends, scored.scores, method=method, **params)
    if moments:
        return moments
    k = int(np.argmax(scored.scores))
    return [Moment(float(scored.starts[k]), float(scored.ends[k]), float(scored.scores[k]))]


def submission(queries: Sequence[MomentQuery], scores: Mapping[str, WindowScores], method: str,
               params: Mapping[str, object]) -> list[dict]:
    """The task's submission rows (``salsa2.moments.submission``) of every query."""
    return [submission_row(q, query_moments(scores[q.qid], method, params)) for q in queries]


def chance_metrics(queries: Sequence[MomentQuery], window: float, hop: float, method: str,
                   params: Mapping[str, object], draws: int = 100, seed: int = 0) -> dict[str, float]:
    """The metrics of uniformly random window scores (the same windows and method), averaged over ``draws``
    seeded draws: the level a model must beat (percent, rounded as the task reports)."""
    truth = ground_truth(queries)
    bounds = {q.vid: window_bounds(q.duration, window, hop) for q in queries}
    totals: dict[str, float] = {}
    for d in range(draws):
        rng = np.random.default_rng([seed, d])
        scores = {q.qid: WindowScores(*bounds[q.vid], rng.random(len(bounds[q.vid][0]))) for q in queries}
        rows = submission(queries, scores, method, params)
        for k, v in moment_scores({r["qid"]: r["pred_relevant_windows"] for r in rows}, truth).fractions().items():
            totals[k] = totals.get(k, 0.0) + v / draws
    return {k: as_percent(v) for k, v in totals.items()}


def evaluate_moments(models: Mapping[str, str | Path], queries: Sequence[MomentQuery], audio_dir: str | Path,
                     window: float, hop: float, method: str, params: Mapping[str, object],
                     ensembles: Mapping[str, Sequence[str]] | None = None,
                     batch_size: int = 16) -> tuple[dict[str, dict[str, float]], dict[str, list[dict]]]:
    """Metrics and submission rows of every model and ensemble: ``({name: metrics}, {name: rows})``; the metrics
    also hold ``chance`` (:func:`chance_metrics`).

    Args:
        models: name -> checkpoint folder.
        queries: the annotated queries (``salsa2.moments.data``).
        audio_dir: the recordings, one file per ``vid``.
        window, hop: seconds.
        method, params: how moments are found (``salsa2.moments.detect``).
        ensembles: name -> member model names.
    """
    truth = ground_truth(queries)
    scores = {}
    for name, path in models.items():
        log.info("moments: %s scores %d queries", name, len(queries))
        scores[name] = score_windows(path, queries, audio_dir, window, hop, batch_size)
    for name, members in (ensembles or {}).items():
        scores[name] = ensemble_scores([scores[m] for m in members])
    rows = {name: submission(queries, s, method, params) for name, s in scores.items()}
    metrics = {name: moment_metrics({row["qid"]: row["pred_relevant_windows"] for row in model_rows}, truth)
               for name, model_rows in rows.items()}
    metrics["chance"] = chance_metrics(queries, window, hop, method, params)
    return metrics, rows


def write_moment_reports(metrics_path: str | Path, submissions_dir: str | Path, metrics: Mapping[str, dict],
                         rows: Mapping[str, list[dict]]) -> None:
    """``metrics_path``: {name: {R1@0.5, R1@0.7, mAP, mAP@0.5, mAP@0.75}} (percent, the task's format);
    ``submissions_dir/<name>.jsonl``: each model's and ensemble's submission file."""
    with atomic_dir(submissions_dir) as tmp:
        for name, r in rows.items():
            write_submission(Path(tmp) / f"{name}.jsonl", r)
    write_json(metrics_path, {name: dict(m) for name, m in metrics.items()})
