"""salsa2's moment metrics equal the DCASE 2026 task 6 evaluation's (line/lighthouse standalone_eval) on the
fixture cases of tests/fixtures/make_moment_metrics.py: the reported percentages exactly, the per-query AP and
R1 IoU to float64 rounding."""

import json

import numpy as np
import pytest

from helpers import FIXTURES
from salsa2.moments.metrics import (IOU_THRESHOLDS, MomentMetricError, average_precision, moment_metrics,
                                    moment_scores)

REFERENCE = json.loads((FIXTURES / "moment_metrics.json").read_text())
EPS = np.finfo(np.float64).eps


def _inputs(case: dict) -> tuple[dict, dict]:
    preds = {d["qid"]: d["pred_relevant_windows"] for d in case["submission"]}
    truth = {d["qid"]: d["relevant_windows"] for d in case["ground_truth"]}
    return preds, truth


@pytest.mark.parametrize("name", sorted(REFERENCE["cases"]))
def test_reported_metrics_equal_the_task_evaluation(name):
    case = REFERENCE["cases"][name]
    assert moment_metrics(*_inputs(case)) == case["reported"]


@pytest.mark.parametrize("name", sorted(REFERENCE["cases"]))
def test_per_query_values_equal_the_task_evaluation(name):
    case = REFERENCE["cases"][name]
    scores = moment_scores(*_inputs(case))
    assert sorted(scores.ap) == sorted(case["per_query_ap"])  # the same queries enter mAP (none without windows)
    for qid, ref in case["per_query_ap"].items():
        np.testing.assert_allclose(scores.ap[qid], ref, rtol=0, atol=8 * EPS)
    assert set(scores.r1_iou) == set(case["r1_iou"])
    for qid, ref in case["r1_iou"].items():
        assert scores.r1_iou[qid] == pytest.approx(ref, rel=0, abs=4 * EPS)


def test_the_fixture_covers_the_rules():
    """The hand-made queries exercise what they are named after (guards the fixture against edits)."""
    case = REFERENCE["cases"]["hand_made"]
    ap = case["per_query_ap"]
    t50, t70 = IOU_THRESHOLDS.index(0.5), IOU_THRESHOLDS.index(0.7)
    assert ap["tie_scores"] != ap["tie_scores_rev"]  # equal scores: the listed order decides
    assert ap["halves"] != ap["halves_rev"]  # equal IoUs with two windows: the later-listed one is matched first
    assert case["r1_iou"]["boundary"] == 0.7 and case["r1_iou"]["boundary_r1_05"] == 0.5
    assert ap["many"][t50] < 1.0  # the best window is the 13th listed: beyond the ten that mAP reads
    assert "only_zero_length" not in ap and "only_zero_length" not in case["r1_iou"]
    assert ap["unsorted"][t70] == 1.0 and case["r1_iou"]["unsorted"] == 0.0  # R1 reads the first listed window
    empty = [d["qid"] for d in REFERENCE["cases"]["empty"]["submission"] if not d["pred_relevant_windows"]]
    assert empty and not set(empty) & set(REFERENCE["cases"]["empty"]["per_query_ap"])


def test_ap_of_hand_computed_queries():
    gt = np.array([[0.0, 10.0], [20.0, 30.0]])
    # first prediction hits window 1, second misses, third hits window 0: precision 1, 1/2, 2/3 at recall 1/2, 1/2, 1
    pred = np.array([[20.0, 30.0, 0.9], [40.0, 50.0, 0.8], [0.0, 10.0, 0.7]])
    np.testing.assert_allclose(average_precision(gt, pred), np.full(10, 0.5 + 0.5 * 2 / 3), rtol=0, atol=4 * EPS)
    assert average_precision(gt, pred[:0]).tolist() == [0.0] * 10
    # a second prediction of a matched window is a false positive
    twice = np.array([[20.0, 30.0, 0.9], [20.0, 30.0, 0.8]])
    np.testing.assert_allclose(average_precision(gt, twice), np.full(10, 0.5), rtol=0, atol=4 * EPS)


@pytest.mark.parametrize("preds, truth, message", [
    ({"a": [[0, 1, 0.5]]}, {"a": [[0, 1]], "b": [[2, 3]]}, "1 without prediction"),
    ({"a": [[0, 1, 0.5]], "c": []}, {"a": [[0, 1]]}, "1 unknown"),
    ({"a": [[2, 1, 0.5]]}, {"a": [[0, 1]]}, "end < start"),
    ({"a": [[0, 1]]}, {"a": [[0, 1]]}, r"\[start, end, score\]"),
    ({"a": [[0, 1, 0.5]]}, {"a": [[0, float("nan")]]}, "non-finite"),
])
def test_bad_predictions_are_one_line_errors(preds, truth, message):
    with pytest.raises(MomentMetricError, match=message) as err:
        moment_metrics(preds, truth)
    assert "\n" not in str(err.value)
