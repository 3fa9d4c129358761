"""Moment evaluation: sliding-window scores per model, ensembles as the mean score, one submission row per query
(best first, at least one window, inside the recording), metrics equal to scoring the written submission file."""

import json

import numpy as np
import pytest

from salsa2.moments.data import ground_truth, read_moments
from salsa2.moments.demo import build_long_demo
from salsa2.moments.evaluate import (WindowScores, chance_metrics, ensemble_scores, evaluate_moments,
                                     query_moments, score_windows, submission, write_moment_reports)
from salsa2.moments.metrics import METRICS, as_percent, moment_metrics, moment_scores
from salsa2.moments.submission import SUBMISSION_KEYS, SubmissionError, read_submission
from salsa2.moments.windows import window_bounds, window_embeddings
from salsa2.search.inference import embed_text, load_model

WINDOW, HOP = 4.0, 2.0
METHOD = ("threshold", {"smooth": 2.0, "z": 1.0})


@pytest.fixture(scope="module")
def recordings(tiny_demo, tmp_path_factory):
    out = tmp_path_factory.mktemp("long") / "moments"
    build_long_demo(tiny_demo.raw, out, recordings=2, min_seconds=40, max_seconds=60, min_clips=2, max_clips=3)
    return out


@pytest.fixture(scope="module")
def evaluated(recordings, trained_model):
    queries = read_moments(recordings / "moments.jsonl")
    metrics, rows = evaluate_moments({"a": trained_model, "b": trained_model}, queries, recordings / "audio", WINDOW,
                                     HOP, *METHOD, ensembles={"ens": ["a", "b"]})
    return queries, metrics, rows


def test_scores_are_window_text_cosines(recordings, trained_model):
    queries = read_moments(recordings / "moments.jsonl")
    scores = score_windows(trained_model, queries, recordings / "audio", WINDOW, HOP)
    model = load_model(trained_model)
    q = queries[-1]
    win = window_embeddings(model, recordings / "audio" / f"{q.vid}.flac", WINDOW, HOP)
    expected = win.emb.astype(np.float64) @ embed_text(model, [q.query])[0].astype(np.float64)
    np.testing.assert_array_equal(scores[q.qid].starts, win.starts)
    np.testing.assert_allclose(scores[q.qid].scores, expected, rtol=0, atol=8 * np.finfo(np.float32).eps)
    assert win.ends[-1] == q.duration


def test_rows_follow_the_task_format(evaluated):
    queries, metrics, rows = evaluated
    assert set(rows) == {"a", "b", "ens"} and set(metrics) == {"a", "b", "ens", "chance"}
    assert all(list(m) == list(METRICS) for m in metrics.values())
    for q, row in zip(queries, rows["a"]):
        assert tuple(row) == SUBMISSION_KEYS and (row["qid"], row["query"], row["vid"]) == (q.qid, q.query, q.vid)
        windows = np.array(row["pred_relevant_windows"])
        assert len(windows) >= 1 and (np.diff(windows[:, 2]) <= 0).all()
        assert (windows[:, 0] >= 0).all() and (windows[:, 1] <= q.duration).all()
        assert (windows[:, 0] < windows[:, 1]).all()


def test_an_ensemble_of_one_model_twice_is_that_model(evaluated):
    _, metrics, rows = evaluated
    assert rows["ens"] == rows["a"] == rows["b"] and metrics["ens"] == metrics["a"]


def test_reported_metrics_are_those_of_the_written_submission(evaluated, tmp_path):
    queries, metrics, rows = evaluated
    write_moment_reports(tmp_path / "moments.json", tmp_path / "subs", metrics, rows)
    assert sorted(p.name for p in (tmp_path / "subs").iterdir()) == ["a.jsonl", "b.jsonl", "ens.jsonl"]
    assert set(json.loads((tmp_path / "moments.json").read_text())) == set(metrics)
    for name in rows:
        assert moment_metrics(read_submission(tmp_path / "subs" / f"{name}.jsonl"), ground_truth(queries)) \
            == metrics[name]


def test_ensemble_is_the_mean_score_and_needs_the_same_windows():
    starts, ends = np.array([0.0, 2.0, 4.0]), np.array([4.0, 6.0, 8.0])
    a = {"q": WindowScores(starts, ends, np.array([0.1, 0.5, 0.2]))}
    b = {"q": WindowScores(starts, ends, np.array([0.3, 0.1, 0.2]))}
    np.testing.assert_allclose(ensemble_scores([a, b])["q"].scores, [0.2, 0.3, 0.2], rtol=0, atol=1e-15)
    c = {"q": WindowScores(starts + 1, ends + 1, np.zeros(3))}
    with pytest.raises(ValueError, match="different windows; give every member the same window and hop"):
        ensemble_scores([a, c])


def test_a_flat_curve_still_gives_its_best_window():
    starts, ends = np.array([0.0, 2.0, 4.0]), np.array([4.0, 6.0, 8.0])
    flat = WindowScores(starts, ends, np.full(3, 0.25))
    [only] = query_moments(flat, *METHOD)
    assert (only.start, only.end, only.score) == (0.0, 4.0, 0.25)


def test_bad_submission_file_is_one_line(tmp_path):
    path = tmp_path / "sub.jsonl"
    path.write_text('{"qid": "a", "pred_relevant_windows": [[0, 1, 0.5]]}\n{"qid": "b", "pred_relevant_windows": '
                    '[[0, 1]]}\n')
    with pytest.raises(SubmissionError, match=r"sub\.jsonl:2: pred_relevant_windows must be a list of \[start, "):
        read_submission(path)


def test_chance_is_random_scores_through_the_same_method(recordings):
    queries = read_moments(recordings / "moments.jsonl")
    chance = chance_metrics(queries, WINDOW, HOP, *METHOD, draws=5, seed=1)
    assert chance == chance_metrics(queries, WINDOW, HOP, *METHOD, draws=5, seed=1)
    assert chance != chance_metrics(queries, WINDOW, HOP, *METHOD, draws=5, seed=2)
    maps = []
    for d in range(5):  # each draw: one random stream, uniform scores for the queries' windows in order
        rng = np.random.default_rng([1, d])
        scores = {}
        for q in queries:
            starts, ends = window_bounds(q.duration, WINDOW, HOP)
            scores[q.qid] = WindowScores(starts, ends, rng.random(len(starts)))
        rows = submission(queries, scores, *METHOD)
        maps.append(moment_scores({r["qid"]: r["pred_relevant_windows"] for r in rows},
                                  ground_truth(queries)).fractions()["mAP"])
    assert chance["mAP"] == as_percent(sum(v / 5 for v in maps))
