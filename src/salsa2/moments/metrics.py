"""Moment-retrieval metrics as DCASE 2026 task 6 computes them: R1@0.5, R1@0.7, mAP@[0.5:0.95], mAP@0.5,
mAP@0.75.

The task scores submissions with the QVHighlights-style standalone evaluation that line/lighthouse ships
(Nishimura et al. 2024; ``training/standalone_eval``; the task baseline awkrail/dcase2026_task6_baseline carries
the same code); its temporal AP follows the ActivityNet detection AP of MMAction2. This module computes the same
numbers with its own code, rule for rule (tests/moments/test_metrics.py compares it with that code's output on
fixtures):

* Ground truth: a query keeps its windows of length in (0, 1500] s (the evaluation's one length range,
  "full"); a query left with none is dropped, with its prediction.
* mAP: per query, its first ``MAX_PRED_WINDOWS`` = 10 predicted windows *in the listed order*, then sorted by
  score, descending (a stable sort: equal scores keep their listed order). At each IoU threshold
  t in 0.50, 0.55, ..., 0.95 a prediction is a true positive when the ground-truth window of highest IoU that
  is not yet matched has IoU >= t (windows are visited by IoU, descending; equal IoUs latest-listed first;
  the first window under t ends the search: false positive). AP is the VOC interpolated area under the
  precision-recall curve (precision made monotone from the right, recall completed to 1 at precision 0).
  mAP@t is the mean AP over queries; mAP (the headline, mAP@[0.5:0.95]) the mean over the ten thresholds.
  A query with no predicted window is left out of the mean, as the reference does (it never enters its table).
* R1@t: the *first listed* predicted window (not the highest scored: list them by score) against the ground-truth
  window of highest IoU (the first such); a hit when their IoU >= t. That IoU divides the intersection by the
  span from the earliest start to the latest end (equal to the union whenever the windows overlap). A query
  with no predicted window counts as a miss (the reference stops with an IndexError there).
* IoU = intersection / (length1 + length2 - intersection), in float64, computed as the reference computes it
  (the same operations in the same order, so values at a threshold compare the same way).
* Reported values are percentages rounded to two decimals (``float(f"{100 * v:.2f}")``), the task's format;
  :func:`moment_scores` keeps the unrounded fractions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from salsa2.utils.errors import UserError

IOU_THRESHOLDS: tuple[float, ...] = tuple(round(0.5 + 0.05 * i, 2) for i in range(10))  # 0.5 .. 0.95
MAX_PRED_WINDOWS = 10  # predicted windows per query that mAP reads
GT_LENGTH_RANGE = (0.0, 1500.0)  # ground-truth windows kept: min < length <= max seconds
HEADLINE = ("R1@0.5", "R1@0.7", "mAP")  # DCASE 2026 task 6's headline metrics
METRICS = ("R1@0.5", "R1@0.7", "mAP", "mAP@0.5", "mAP@0.75")


class MomentMetricError(UserError, ValueError):
    """Predictions that cannot be scored against the ground truth (missing or extra queries, bad windows)."""


@dataclass
class MomentScores:
    """Unrounded per-query results.

    Attributes:
        ap: qid -> (10,) AP at each threshold of ``IOU_THRESHOLDS``, for queries with at least one prediction.
        r1_iou: qid -> IoU of the first predicted window with its best ground-truth window (0 when none).
    """

    ap: dict[str, np.ndarray]
    r1_iou: dict[str, float]

    def map_at(self) -> np.ndarray:
        """(10,) mAP at each threshold: the mean AP over the queries that have predictions (NaN when none)."""
        if not self.ap:
            return np.full(len(IOU_THRESHOLDS), np.nan)
        return np.array(list(self.ap.values())).mean(0)

    def r1_at(self, threshold: float) -> float:
        ious = np.array(list(self.r1_iou.values()), dtype=np.float64)
        return float(np.mean(ious >= threshold)) if len(ious) else float("nan")

    def fractions(self) -> dict[str, float]:
        """The five metrics as unrounded fractions in [0, 1]."""
        per_t = self.map_at()
        return {"R1@0.5": self.r1_at(0.5), "R1@0.7": self.r1_at(0.7), "mAP": float(np.mean(per_t)),
                "mAP@0.5": float(per_t[IOU_THRESHOLDS.index(0.5)]),
                "mAP@0.75": float(per_t[IOU_THRESHOLDS.index(0.75)])}


def cross_iou(spans: np.ndarray, gts: np.ndarray) -> np.ndarray:
    """(N, M) IoU of every span with every ground-truth window; both (., 2) [start, end] float64 arrays."""
    lengths1 = spans[:, 1] - spans[:, 0]
    lengths2 = gts[:, 1] - gts[:, 0]
    inter = np.clip(np.minimum(spans[:, None, 1], gts[None, :, 1]) - np.maximum(spans[:, None, 0], gts[None, :, 0]),
                    0, None)
    return inter / (lengths1[:, None] + lengths2[None, :] - inter)


def span_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over the span from the earliest start to the latest end (R1's IoU; 0 for an empty span)."""
    inter = max(0.0, min(a[1], b[1]) - max(a[0], b[0]))
    span = max(a[1], b[1]) - min(a[0], b[0])
    return float(inter / span) if span != 0 else 0.0


def interpolated_ap(precision: np.ndarray, recall: np.ndarray) -> float:
    """VOC interpolated AP: precision made non-increasing from the right, summed over the recall steps."""
    prec = np.concatenate([[0.0], precision, [0.0]])
    rec = np.concatenate([[0.0], recall, [1.0]])
    prec = np.maximum.accumulate(prec[::-1])[::-1]
    steps = np.flatnonzero(rec[1:] != rec[:-1]) + 1
    return float(np.sum((rec[steps] - rec[steps - 1]) * prec[steps]))


def average_precision(gt: np.ndarray, pred: np.ndarray,
                      thresholds: Sequence[float] = IOU_THRESHOLDS) -> np.ndarray:
    """(T,) AP of one query's predictions ``pred`` (N, 3) [start, end, score] against its windows ``gt`` (M, 2)."""
    ap = np.zeros(len(thresholds))
    if len(pred) == 0:
        return ap
    order = np.argsort(-pred[:, 2], kind="stable")
    pred = pred[order]
    tp = np.zeros((len(thresholds), len(pred)))
    fp = np.zeros((len(thresholds), len(pred)))
    matched = np.zeros((len(thresholds), len(gt)), dtype=bool)
    for i, row in enumerate(pred):
        iou = cross_iou(row[None, :2], gt)[0]
        visit = np.lexsort((-np.arange(len(gt)), -iou))  # IoU descending, equal IoUs latest-listed first
        for t, threshold in enumerate(thresholds):
            for j in visit:
                if iou[j] < threshold:
                    break
                if matched[t, j]:
                    continue
                tp[t, i] = 1
                matched[t, j] = True
                break
            fp[t, i] = 1 - tp[t, i]
    tp_cum = np.cumsum(tp, axis=1)
    fp_cum = np.cumsum(fp, axis=1)
    recall = tp_cum / float(len(gt))
    precision = tp_cum / (tp_cum + fp_cum)
    for t in range(len(thresholds)):
        ap[t] = interpolated_ap(precision[t], recall[t])
    return ap


def _windows(rows: object, width: int, qid: str, what: str) -> np.ndarray:
    try:
        arr = np.asarray(rows, dtype=np.float64)
        if arr.size == 0:
            return np.zeros((0, width))
        if arr.ndim != 2 or arr.shape[1] < width:
            raise ValueError
    except (TypeError, ValueError):
        raise MomentMetricError(f"query {qid!r}: {what} must be a list of [start, end{', score' if width == 3 else ''}]"
                                f" rows, got {rows!r}") from None
    if not np.isfinite(arr[:, :width]).all() or (arr[:, 1] < arr[:, 0]).any():
        raise MomentMetricError(f"query {qid!r}: {what} has a window with a non-finite value or end < start: "
                                f"{arr[:, :width].tolist()}; give [start, end] with start <= end")
    return arr[:, :width]


def moment_scores(predictions: Mapping[str, Sequence], ground_truth: Mapping[str, Sequence]) -> MomentScores:
    """Per-query AP and R1 IoU (module docstring); ``predictions``: qid -> [[start, end, score], ...] in the
    submitted order, ``ground_truth``: qid -> [[start, end], ...]. Both must hold the same queries."""
    missing = [q for q in ground_truth if q not in predictions]
    extra = [q for q in predictions if q not in ground_truth]
    if missing or extra:
        raise MomentMetricError(f"predictions and ground truth must hold the same queries: {len(missing)} without "
                                f"prediction (e.g. {missing[:3]}), {len(extra)} unknown (e.g. {extra[:3]})")
    lo, hi = GT_LENGTH_RANGE
    ap: dict[str, np.ndarray] = {}
    r1: dict[str, float] = {}
    for qid, windows in ground_truth.items():
        gt = _windows(windows, 2, qid, "relevant_windows")
        gt = gt[(gt[:, 1] - gt[:, 0] > lo) & (gt[:, 1] - gt[:, 0] <= hi)]
        if len(gt) == 0:
            continue
        pred = _windows(predictions[qid], 3, qid, "pred_relevant_windows")
        if len(pred):
            ap[qid] = average_precision(gt, pred[:MAX_PRED_WINDOWS])
            best = int(np.argmax(cross_iou(pred[:1, :2], gt)[0]))
            r1[qid] = span_iou(pred[0, :2], gt[best])
        else:
            r1[qid] = 0.0
    return MomentScores(ap, r1)


def as_percent(value: float) -> float:
    """The task's reported form: a percentage rounded to two decimals."""
    return float(f"{100 * value:.2f}")


def moment_metrics(predictions: Mapping[str, Sequence], ground_truth: Mapping[str, Sequence]) -> dict[str, float]:
    """R1@0.5, R1@0.7, mAP (= mAP@[0.5:0.95]), mAP@0.5, mAP@0.75 as the task reports them (percent, two decimals)."""
    return {k: as_percent(v) for k, v in moment_scores(predictions, ground_truth).fractions().items()}
