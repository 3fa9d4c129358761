"""Retrieval metrics on hand-made rankings (Tymofieiev 2025, sec. 3.8; Xie et al. 2024, sec. IV-D;
DCASE 2025 task 6); blockwise evaluation of stored embeddings equals evaluating the matrix."""

import math

import numpy as np
import pytest

from salsa2.evaluation.metrics import (bidirectional_metrics, constant_scores, embedding_scores, mean_scores,
                                      multi_relevance_metrics, retrieval_metrics)


def _ranked(order_per_query, n_items):
    """Score rows whose descending order is ``order_per_query`` (distinct scores, no ties)."""
    scores = np.zeros((len(order_per_query), n_items))
    for q, order in enumerate(order_per_query):
        scores[q, order] = np.arange(n_items, 0, -1)
    return scores


def test_one_relevant_item_ap_is_reciprocal_rank_within_10():
    n = 12
    # the relevant item (0) at ranks 1, 3 and 11
    orders = [[0] + list(range(1, n)), [1, 2, 0] + list(range(3, n)), list(range(1, 11)) + [0, 11]]
    scores = _ranked(orders, n)
    out = retrieval_metrics(lambda s, e: scores[s:e], [np.array([0])] * 3)
    assert out["mAP@10"] == pytest.approx((1 + 1 / 3 + 0) / 3)
    assert out["R@1"] == pytest.approx(1 / 3)
    assert out["R@5"] == pytest.approx(2 / 3)
    assert out["R@10"] == pytest.approx(2 / 3)


def test_seven_relevant_items_per_query():
    n = 20
    relevant = np.array([0, 1, 2, 3, 4, 5, 6])
    # ranking: r r n r n n r n n n | r r n n ... (relevant hits at ranks 1, 2, 4, 7, 11, 12; item 6 at rank 20)
    order = [0, 1, 7, 2, 8, 9, 3, 10, 11, 12, 4, 5, 13, 14, 15, 16, 17, 18, 19, 6]
    scores = _ranked([order], n)
    out = retrieval_metrics(lambda s, e: scores[s:e], [relevant])
    ap = (1 / 1 + 2 / 2 + 3 / 4 + 4 / 7) / min(7, 10)  # precision at the relevant hits in the top 10
    assert out["mAP@10"] == pytest.approx(ap)
    assert out["R@1"] == pytest.approx(1.0)
    assert out["R@5"] == pytest.approx(1.0)
    assert out["R@10"] == pytest.approx(1.0)  # a relevant item in the top k counts as a hit (published tables)
    assert out["R@1_share"] == pytest.approx(1 / 7)
    assert out["R@5_share"] == pytest.approx(3 / 7)
    assert out["R@10_share"] == pytest.approx(4 / 7)
    # the first relevant item at rank 3: R@1 = 0, R@5 = 1
    late = _ranked([[7, 8] + [i for i in order if i not in (7, 8)]], n)
    out = retrieval_metrics(lambda s, e: late[s:e], [relevant])
    assert (out["R@1"], out["R@5"], out["R@1_share"]) == (0.0, 1.0, 0.0)


def test_bidirectional_relevance_is_by_clip_id_with_uneven_caption_counts():
    audio_ids = ["a", "b", "c"]
    caption_audio = ["a", "b", "b", "b", "b", "b", "b", "b", "c"]  # 1, 7 and 1 captions
    rng = np.random.default_rng(0)
    sim = rng.normal(size=(3, 9))
    sim[[0, 1, 1, 1, 1, 1, 1, 1, 2], np.arange(9)] += 10  # every caption's own clip scores highest
    out = bidirectional_metrics(sim, audio_ids, caption_audio)
    assert out["t2a/mAP@10"] == pytest.approx(1.0) and out["t2a/R@1"] == pytest.approx(1.0)
    # audio -> text: clip b's 7 captions fill its top 7, so AP@10 = 1, R@1 = 1 (a hit) and its share 1/7
    assert out["a2t/mAP@10"] == pytest.approx(1.0)
    assert out["a2t/R@1"] == pytest.approx(1.0)
    assert out["a2t/R@1_share"] == pytest.approx((1 + 1 / 7 + 1) / 3)
    assert "t2a/R@1_share" not in out


def test_constant_scores_score_at_chance():
    n_audio, n_captions = 40, 200
    audio_ids = [f"a{i}" for i in range(n_audio)]
    caption_audio = [f"a{i % n_audio}" for i in range(n_captions)]  # 5 captions per clip
    out = bidirectional_metrics(np.zeros((n_audio, n_captions)), audio_ids, caption_audio)
    # t2a: one relevant among 40, random rank r uniform: E[AP@10] = (1/40) sum_{r<=10} 1/r; R@k = k/40
    assert out["t2a/mAP@10"] == pytest.approx(sum(1 / r for r in range(1, 11)) / 40)
    assert out["t2a/R@1"] == pytest.approx(1 / 40)
    assert out["t2a/R@10"] == pytest.approx(10 / 40)
    # a2t: 5 relevant among 200, expected share in the top k = k/200; any of the 5 in the top k:
    # 1 - C(195, k) / C(200, k)
    assert out["a2t/R@5_share"] == pytest.approx(5 / 200)
    assert out["a2t/R@1"] == pytest.approx(5 / 200)
    assert out["a2t/R@5"] == pytest.approx(1 - math.comb(195, 5) / math.comb(200, 5))
    assert out["a2t/R@10"] == pytest.approx(1 - math.comb(190, 5) / math.comb(200, 5))
    # a brute-force average over random tie-breaks agrees with the exact expectation
    rng = np.random.default_rng(0)
    rel = np.arange(5) * 40
    draws = [retrieval_metrics(lambda s, e: rng.random((1, n_captions)), [rel])["mAP@10"] for _ in range(4000)]
    exact = retrieval_metrics(lambda s, e: np.zeros((1, n_captions)), [rel])["mAP@10"]
    assert np.mean(draws) == pytest.approx(exact, abs=0.004)


def test_map16_multi_relevance_hand_made():
    # 1 query, 3 relevant clips (0, 1, 2) among 20; ranking puts them at ranks 2, 5 and 17
    n_audio = 20
    order = [3, 0, 4, 5, 1] + list(range(6, 17)) + [2, 17, 18, 19]
    scores = np.zeros((n_audio, 1))
    scores[order, 0] = np.arange(n_audio, 0, -1)
    out = multi_relevance_metrics(scores, [(0, np.array([0, 1, 2]))], k=16)
    # DCASE 2025 baseline: sum over relevant hits in the top 16 of hits/rank, divided by m = 3
    assert out["t2a_multi/mAP@16"] == pytest.approx((1 / 2 + 2 / 5) / 3)


def test_map16_at_chance_with_constant_scores():
    scores = np.zeros((32, 2))
    out = multi_relevance_metrics(scores, [(0, np.array([5])), (1, np.array([1, 2, 3, 4]))], k=16)
    one = sum(1 / r for r in range(1, 17)) / 32  # one relevant among 32
    rng = np.random.default_rng(1)
    four = np.mean([multi_relevance_metrics(rng.random((32, 1)), [(0, np.array([1, 2, 3, 4]))])["t2a_multi/mAP@16"]
                    for _ in range(4000)])
    assert out["t2a_multi/mAP@16"] == pytest.approx((one + four) / 2, abs=0.004)


@pytest.mark.parametrize("norm", ["min", "all"])
def test_vector_path_equals_per_query_metrics(norm):
    """``untied_metrics`` (all rows at once) gives ``query_metrics``' values wherever it claims a row, and
    flags exactly the rows whose relevant items tie with another item; ``retrieval_metrics`` mixes both."""
    from salsa2.evaluation.metrics import query_metrics, untied_metrics

    rng = np.random.default_rng(3)
    n_items, ks, map_k = 40, (1, 5, 10), 10
    scores = rng.standard_normal((60, n_items))
    scores[40:] = np.round(scores[40:] * 2)  # coarse scores: ties, some of them on relevant items
    relevant = [np.unique(rng.choice(n_items, int(rng.integers(1, 12)), replace=False)) for _ in range(60)]
    ap, hits, any_hit, tied = untied_metrics(scores, relevant, ks, map_k, norm, max_elements=500)
    expect_tied = [any((scores[q] == scores[q, r]).sum() > 1 for r in rel) for q, rel in enumerate(relevant)]
    assert tied.tolist() == expect_tied and not tied[:40].any() and tied[40:].any()
    for q in np.flatnonzero(~tied):
        ap_q, hits_q, any_q = query_metrics(scores[q], relevant[q], ks, map_k, norm)
        assert ap[q] == pytest.approx(ap_q, abs=1e-12)
        np.testing.assert_allclose(hits[q], hits_q, atol=1e-12)
        np.testing.assert_allclose(any_hit[q], any_q, atol=1e-12)
    mixed = retrieval_metrics(lambda s, e: scores[s:e], relevant, norm=norm, block=16)
    one_by_one = [query_metrics(scores[q], relevant[q], ks, map_k, norm) for q in range(60)]
    assert mixed["mAP@10"] == pytest.approx(np.mean([a for a, _, _ in one_by_one]), abs=1e-12)
    assert mixed["R@5"] == pytest.approx(np.mean([h[1] for _, _, h in one_by_one]), abs=1e-12)
    assert mixed["R@10_share"] == pytest.approx(np.mean([h[2] for _, h, _ in one_by_one]), abs=1e-12)


def _normed(rng, n, d):
    x = rng.normal(size=(n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_blockwise_evaluation_equals_matrix_evaluation():
    rng = np.random.default_rng(3)
    audio_ids = [f"a{i}" for i in range(40)]
    cap_audio = [audio_ids[i] for i in rng.integers(0, 40, 150)] + audio_ids  # every clip has a caption
    members = [(_normed(rng, 40, 8), _normed(rng, 190, 8)) for _ in range(2)]
    mean = np.mean([a @ t.T for a, t in members], axis=0)
    full = bidirectional_metrics(mean, audio_ids, cap_audio)
    blocked = bidirectional_metrics(mean_scores([embedding_scores(a, t) for a, t in members]), audio_ids,
                                    cap_audio, block=9)
    assert full.keys() == blocked.keys()
    for k in full:
        assert blocked[k] == pytest.approx(full[k], abs=1e-9)
    chance = bidirectional_metrics(constant_scores(40, 190), audio_ids, cap_audio, block=9)
    assert chance == bidirectional_metrics(np.zeros((40, 190)), audio_ids, cap_audio)
    assert chance["t2a/R@1"] == pytest.approx(1 / 40)
