"""Moments from window scores: a recording's sliding-window scores ``s_k`` (cosine of window ``k``'s audio
embedding with the query, ``salsa2.moments.windows``) -> ranked ``[start, end, score]`` moments.

Methods (``MOMENT_METHODS``; ``find_moments(..., method=NAME, **params)``):

- ``threshold`` (default): smooth, threshold relative to the file, merge.
  1. Smoothing: ``s~_k = mean(s_j : |t_j - t_k| <= smooth / 2)``, ``t`` the window centres (a centred moving
     average over ``smooth`` seconds; ``smooth = 0`` keeps the raw scores).
  2. Threshold relative to the file's own score distribution: ``tau = min(mean(s~) + z * std(s~), max(s~))``
     (the best window always passes; a file whose scores are all equal has no moment).
  3. Merging: the windows with ``s~_k >= tau`` that overlap or lie within ``gap`` seconds of each other form
     one run, one moment scored by the run's ``max s~``. It spans ``[start of its first window, end of its
     last]`` (``extent="window"``) or only the middle hop of each window, ``[t_first - h / 2, t_last + h / 2]``
     (``extent="centre"``, the default; ``h`` the median hop, clipped to the windows): a sound scores highest in
     the windows centred on it, and the union of those windows overshoots it by about ``window - hop`` seconds.
- ``nms``: every window is a candidate scored by ``s~_k``; greedily the best one is kept and the candidates
  whose temporal IoU with it exceeds ``iou`` are dropped (temporal non-maximum suppression), up to ``top``
  moments.

Both return at most ``top`` moments, sorted by score descending (ties: earlier start first). Defaults were
measured on a long-recording set of the demo (docs/moments.md, "Defaults").
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from salsa2.utils.registry import Registry

MOMENT_METHODS: Registry = Registry("moment method")
DEFAULT_METHOD = "threshold"
FLAT = 1e-9  # scores spanning less than this (relative) are equal: a file without contrast has no moment


@dataclass
class Moment:
    """A time span of a recording in seconds and its score (higher = more relevant)."""

    start: float
    end: float
    score: float


def smooth_scores(starts: np.ndarray, ends: np.ndarray, scores: np.ndarray, smooth: float) -> np.ndarray:
    """Centred moving average of ``scores`` over windows whose centres lie within ``smooth / 2`` seconds."""
    if smooth <= 0 or len(scores) < 2:
        return scores.astype(np.float64)
    centres = (starts + ends) / 2
    lo = np.searchsorted(centres, centres - smooth / 2 - 1e-9, side="left")
    hi = np.searchsorted(centres, centres + smooth / 2 + 1e-9, side="right")
    csum = np.concatenate([[0.0], np.cumsum(scores, dtype=np.float64)])
    return (csum[hi] - csum[lo]) / (hi - lo)


def _ranked(moments: list[Moment], top: int) -> list[Moment]:
    return sorted(moments, key=lambda m: (-m.score, m.start, m.end))[: max(0, int(top))]


@MOMENT_METHODS.register("threshold")
def threshold_moments(starts: np.ndarray, ends: np.ndarray, scores: np.ndarray, *, smooth: float = 2.0,
                      z: float = 1.0, gap: float = 0.0, extent: str = "centre", top: int = 5) -> list[Moment]:
    """Smoothing, a threshold relative to the file's scores, adjacent windows merged (module docstring)."""
    if extent not in ("window", "centre"):
        raise ValueError(f"extent = {extent!r}; give 'window' or 'centre'")
    s = smooth_scores(starts, ends, scores, smooth)
    if np.ptp(s) <= FLAT * max(1.0, float(np.abs(s).max())):
        return []
    tau = min(float(s.mean() + z * s.std()), float(s.max()))
    above = np.flatnonzero(s >= tau)
    runs: list[list[int]] = []
    for k in above:
        if runs and (k == runs[-1][-1] + 1 or starts[k] - ends[runs[-1][-1]] <= gap):
            runs[-1].append(int(k))
        else:
            runs.append([int(k)])
    if extent == "centre":
        hop = float(np.median(np.diff(starts))) if len(starts) > 1 else float(ends[0] - starts[0])
        centres = (starts + ends) / 2
        lo = np.maximum(starts, centres - hop / 2)
        hi = np.minimum(ends, centres + hop / 2)
    else:
        lo, hi = starts, ends
    moments = [Moment(float(lo[r[0]]), float(hi[r[-1]]), float(s[r].max())) for r in runs]
    return _ranked(moments, top)


def temporal_iou(a_start: float, a_end: float, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """IoU of the span ``[a_start, a_end]`` with each ``[starts_i, ends_i]``."""
    inter = np.clip(np.minimum(a_end, ends) - np.maximum(a_start, starts), 0, None)
    union = np.maximum(a_end, ends) - np.minimum(a_start, starts)
    return inter / np.maximum(union, 1e-12)


@MOMENT_METHODS.register("nms")
def nms_moments(starts: np.ndarray, ends: np.ndarray, scores: np.ndarray, *, smooth: float = 0.0,
                iou: float = 0.3, top: int = 5) -> list[Moment]:
    """The best windows after temporal non-maximum suppression at ``iou`` (module docstring)."""
    s = smooth_scores(starts, ends, scores, smooth)
    order = np.lexsort((starts, -s))
    alive = np.ones(len(s), bool)
    out: list[Moment] = []
    for k in order:
        if not alive[k]:
            continue
        out.append(Moment(float(starts[k]), float(ends[k]), float(s[k])))
        if len(out) >= top:
            break
        alive &= temporal_iou(starts[k], ends[k], starts, ends) <= iou
    return _ranked(out, top)


def method_params(method: str) -> dict[str, object]:
    """The parameters of a method with their defaults.

    Raises:
        ValueError: an unknown method (the message lists the known ones).
    """
    if method not in MOMENT_METHODS:
        raise ValueError(f"unknown moment method {method!r}; known: {', '.join(MOMENT_METHODS.names())}")
    fn: Callable = MOMENT_METHODS.get(method)
    return {p.name: p.default for p in inspect.signature(fn).parameters.values() if p.kind is p.KEYWORD_ONLY}


def find_moments(starts: np.ndarray, ends: np.ndarray, scores: np.ndarray, method: str = DEFAULT_METHOD,
                 **params: float) -> list[Moment]:
    """Moments of one recording from its window scores, best first (module docstring for the methods).

    Args:
        starts, ends: (n,) window bounds in seconds, in time order.
        scores: (n,) the windows' scores for one query.
        method: a name in ``MOMENT_METHODS``.
        params: the method's parameters (``method_params(method)``).

    Raises:
        ValueError: an unknown method or parameter, misaligned or non-finite inputs (one line naming it).
    """
    known = method_params(method)
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise ValueError(f"moment method {method!r} has no parameter {', '.join(unknown)}; "
                         f"it takes {', '.join(f'{k}={v}' for k, v in known.items())}")
    starts, ends, scores = (np.asarray(a, np.float64).reshape(-1) for a in (starts, ends, scores))
    if not len(starts) == len(ends) == len(scores):
        raise ValueError(f"{len(starts)} starts, {len(ends)} ends and {len(scores)} scores; give one of each "
                         "per window")
    if len(scores) == 0:
        return []
    for name, a in (("starts", starts), ("ends", ends), ("scores", scores)):
        if not np.isfinite(a).all():
            raise ValueError(f"{name} has a NaN/inf value at window {int(np.flatnonzero(~np.isfinite(a))[0])}")
    if (ends <= starts).any() or (np.diff(starts) < 0).any():
        raise ValueError("windows must be in time order with end > start; give the windows of one recording")
    return MOMENT_METHODS.get(method)(starts, ends, scores, **params)
