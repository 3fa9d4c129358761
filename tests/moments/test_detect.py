"""Moments from window scores: the documented formulas of each method, ranking, and one-line errors."""

from __future__ import annotations

import numpy as np
import pytest

from salsa2.moments.detect import (
    MOMENT_METHODS,
    find_moments,
    method_params,
    smooth_scores,
    temporal_iou,
)


def _windows(n: int, window: float = 4.0, hop: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    starts = np.arange(n) * hop
    return starts, starts + window


def test_smoothing_is_the_centred_mean_over_the_span():
    rng = np.random.default_rng(0)
    starts, ends = _windows(30, 4.0, 0.5)
    scores = rng.normal(size=30)
    got = smooth_scores(starts, ends, scores, 2.0)
    centres = (starts + ends) / 2
    want = [scores[np.abs(centres - c) <= 1.0 + 1e-9].mean() for c in centres]
    np.testing.assert_allclose(got, want, rtol=1e-12)
    np.testing.assert_array_equal(smooth_scores(starts, ends, scores, 0.0), scores)


def test_threshold_merges_the_run_above_the_file_relative_threshold():
    starts, ends = _windows(40)
    scores = np.zeros(40)
    scores[10:14] = 1.0
    scores[30] = 0.5
    moments = find_moments(starts, ends, scores, "threshold", smooth=0.0, z=1.0, extent="window")
    tau = scores.mean() + scores.std()
    assert tau < 0.5  # both bumps pass: one moment each, the merged run of four windows first
    assert [(m.start, m.end, m.score) for m in moments] == [(10.0, 17.0, 1.0), (30.0, 34.0, 0.5)]
    strict = find_moments(starts, ends, scores, "threshold", smooth=0.0, z=3.0, extent="window")
    assert [(m.start, m.end) for m in strict] == [(10.0, 17.0)]


def test_threshold_gap_joins_nearby_runs_and_centre_extent_narrows():
    starts, ends = _windows(40)
    scores = np.zeros(40)
    scores[[10, 11, 20, 21]] = 1.0
    apart = find_moments(starts, ends, scores, "threshold", smooth=0.0, z=0.5, extent="window")
    assert [(m.start, m.end) for m in apart] == [(10.0, 15.0), (20.0, 25.0)]  # window 11 ends 15, 20 starts at 20
    assert [(m.start, m.end) for m in find_moments(starts, ends, scores, "threshold", smooth=0.0, z=0.5,
                                                   gap=4.9, extent="window")] == [(10.0, 15.0), (20.0, 25.0)]
    joined = find_moments(starts, ends, scores, "threshold", smooth=0.0, z=0.5, gap=5.0, extent="window")
    assert [(m.start, m.end) for m in joined] == [(10.0, 25.0)]
    centre = find_moments(starts, ends, scores, "threshold", smooth=0.0, z=0.5, extent="centre")
    # centre of window k is k + 2; each keeps its middle hop: [k + 1.5, k + 2.5]
    assert [(m.start, m.end) for m in centre] == [(11.5, 13.5), (21.5, 23.5)]
    scores[[12, 14]] = 1.0  # windows 12 and 14 overlap: with 10-11 they are one moment
    assert [(m.start, m.end) for m in find_moments(starts, ends, scores, "threshold", smooth=0.0, z=0.5,
                                                   extent="window")] == [(10.0, 18.0), (20.0, 25.0)]


def test_threshold_always_keeps_the_best_window_and_flat_scores_have_no_moment():
    starts, ends = _windows(20)
    scores = np.linspace(0, 1, 20)
    moments = find_moments(starts, ends, scores, "threshold", smooth=0.0, z=100.0, extent="window")
    assert [(m.start, m.end, m.score) for m in moments] == [(19.0, 23.0, 1.0)]
    assert find_moments(starts, ends, np.full(20, 0.3), "threshold") == []
    assert find_moments(starts, ends, np.full(20, 0.3), "nms", top=2)[0].start == 0.0  # nms: earliest first on ties


def test_nms_suppresses_overlaps_above_iou_and_ranks_by_score():
    starts, ends = _windows(20)
    rng = np.random.default_rng(3)
    scores = rng.random(20)
    moments = find_moments(starts, ends, scores, "nms", iou=0.3, top=20)
    kept = [(m.start, m.end) for m in moments]
    for i, (a, b) in enumerate(kept):  # no two kept windows overlap by more than the IoU
        others = np.array(kept[:i] + kept[i + 1 :])
        if len(others):
            assert temporal_iou(a, b, others[:, 0], others[:, 1]).max() <= 0.3
    assert [m.score for m in moments] == sorted((m.score for m in moments), reverse=True)
    assert moments[0].score == scores.max()
    # greedy: a suppressed window is one that overlaps an earlier kept one by more than the IoU
    kept_starts = {m.start for m in moments}
    for k in np.flatnonzero(~np.isin(starts, list(kept_starts))):
        better = [m for m in moments if m.score >= scores[k]]
        assert any(temporal_iou(m.start, m.end, starts[k : k + 1], ends[k : k + 1])[0] > 0.3 for m in better)
    assert len(find_moments(starts, ends, scores, "nms", iou=0.3, top=2)) == 2


def test_temporal_iou():
    np.testing.assert_allclose(temporal_iou(0.0, 4.0, np.array([0.0, 2.0, 4.0, 1.0]), np.array([4.0, 6.0, 8.0, 2.0])),
                               [1.0, 2 / 6, 0.0, 0.25])


def test_one_window_and_no_window():
    assert [(m.start, m.end) for m in find_moments([0.0], [3.0], [0.5], "nms")] == [(0.0, 3.0)]
    assert find_moments([0.0], [3.0], [0.5], "threshold") == []  # one score: no contrast, no moment
    assert find_moments([], [], [], "threshold") == []


@pytest.mark.parametrize(("args", "kwargs", "message"), [
    (([0.0, 1.0], [4.0, 5.0], [0.1, 0.2]), {"method": "peaks"}, "unknown moment method 'peaks'; known: nms, threshold"),
    (([0.0, 1.0], [4.0, 5.0], [0.1, 0.2]), {"iou": 0.5}, "has no parameter iou"),
    (([0.0, 1.0], [4.0, 5.0], [0.1]), {}, "2 starts, 2 ends and 1 scores"),
    (([0.0, 1.0], [4.0, 5.0], [0.1, np.nan]), {}, "scores has a NaN/inf value at window 1"),
    (([1.0, 0.0], [5.0, 4.0], [0.1, 0.2]), {}, "time order"),
    (([0.0, 1.0], [0.0, 5.0], [0.1, 0.2]), {}, "end > start"),
    (([0.0, 1.0], [4.0, 5.0], [0.1, 0.2]), {"extent": "middle"}, "extent = 'middle'"),
])
def test_bad_input_is_one_line(args, kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")) as err:
        find_moments(*args, **kwargs)
    assert "\n" not in str(err.value)


def test_registry_lists_methods_and_params():
    assert MOMENT_METHODS.names() == ["nms", "threshold"]
    assert set(method_params("threshold")) == {"smooth", "z", "gap", "extent", "top"}
    assert set(method_params("nms")) == {"smooth", "iou", "top"}
