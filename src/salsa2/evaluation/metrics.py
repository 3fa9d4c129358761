"""Retrieval metrics: mAP@k and R@k for any number of relevant items per query, fair to ties.

Definitions (Tymofieiev 2025, sec. 3.8, Xie et al. 2024, sec. IV-D). For a query with m relevant items and a ranking:
    AP@K = 1/norm * sum_{k <= K, item k relevant} P(k),   P(k) = (# relevant in the top k) / k
    R@k  = 1 if any relevant item is in the top k, else 0 (as published tables count it; Primus et al. 2024, Table 1)
    R@k_share = (# relevant in the top k) / m (equal to R@k with one relevant item, as for text -> audio)
with norm = min(m, K) (the DCASE 2024 / Xie et al. 2024 convention; for one relevant item AP@10 = 1/rank when
rank <= 10) or norm = m (the DCASE 2025 baseline's mAP@16). Text -> audio: each caption's relevant item is
its own clip. Audio -> text: all captions of the clip. Relevance comes from clip ids, never from positions.

Ties: items with equal scores are ranked in random order and the metrics are their *expected* values over
that order, computed exactly (a constant score matrix scores at chance, not at 0 or 1). Within a tie group
of t items holding r relevant ones, slot j is relevant with probability r/t, and, given that, holds in
expectation (j-1)(r-1)/(t-1) relevant items before it in the group; precision is linear in the hit count,
so the expectation of AP is exact.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np


def query_metrics(scores: np.ndarray, relevant: np.ndarray, ks: Sequence[int], map_k: int, norm: str) -> tuple:
    """Expected (AP@map_k, [hits@k / m], [P(any hit in the top k)] for k in ks) of one query.

    ``scores`` (N,), ``relevant`` item indices. Any-hit: only the best-scored relevant tie group matters; with g
    items above it and t tied items holding r relevant ones, none of the r lies in its first s = k - g slots
    with probability C(t - s, r) / C(t, r).
    """
    relevant = np.unique(relevant)
    m = len(relevant)
    if m == 0:
        raise ValueError("a query without relevant items cannot be scored")
    rel_scores = scores[relevant]
    values, counts = np.unique(rel_scores, return_counts=True)  # ascending
    kmax = max(max(ks), map_k)
    ap = 0.0
    hits = np.zeros(len(ks))
    any_hit = np.zeros(len(ks))
    rel_above = 0
    for v, r in zip(values[::-1], counts[::-1]):  # best-scored group first
        g = int((scores > v).sum())
        if g >= kmax:
            break
        t = int((scores == v).sum())
        j = np.arange(1, t + 1)
        pos = g + j
        p_rel = r / t
        expected_before = (j - 1) * (r - 1) / max(t - 1, 1)
        in_map = pos <= map_k
        ap += float((p_rel * (rel_above + 1 + expected_before[in_map]) / pos[in_map]).sum())
        for i, k in enumerate(ks):
            hits[i] += p_rel * int((pos <= k).sum())
            if rel_above == 0:  # the best relevant group decides whether any relevant item is in the top k
                slots = min(max(k - g, 0), t)
                miss = 1.0
                for q in range(int(r)):
                    miss *= max(t - slots - q, 0) / (t - q)
                any_hit[i] = 1.0 - miss
        rel_above += int(r)
    denom = min(m, map_k) if norm == "min" else m
    return ap / denom, hits / m, any_hit


def untied_metrics(scores: np.ndarray, relevant: list[np.ndarray], ks: Sequence[int], map_k: int, norm: str,
                   max_elements: int = 1 << 24) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``query_metrics`` of every row of ``scores`` (Q, N) at once, for queries whose relevant items tie with
    no other item; returns (AP (Q,), hits (Q, len(ks)), any-hit (Q, len(ks)), tied (Q,) bool). Rows marked
    ``tied`` (a relevant score equal to another score, or not finite) hold no values: score them with
    ``query_metrics``. ``relevant``: unique item indices per row, none empty.

    Without ties the ranking is unique: a relevant item's rank is 1 + the number of higher scores, and the i-th
    best relevant item at rank r adds i / r to AP (the same sums as ``query_metrics``, in vector form)."""
    n_q = len(relevant)
    m = np.array([len(r) for r in relevant])
    if n_q == 0:
        return np.zeros(0), np.zeros((0, len(ks))), np.zeros((0, len(ks))), np.zeros(0, bool)
    if (m == 0).any():
        raise ValueError("a query without relevant items cannot be scored")
    width = int(m.max())
    index = np.zeros((n_q, width), np.int64)
    valid = np.arange(width)[None, :] < m[:, None]
    index[valid] = np.concatenate(relevant)
    rel_scores = np.take_along_axis(scores, index, axis=1)
    above = np.zeros((n_q, width), np.int64)
    equal = np.zeros((n_q, width), np.int64)
    step = max(1, max_elements // max(1, width * scores.shape[1]))  # bounds the (rows, width, N) comparisons
    for s in range(0, n_q, step):
        row, rel = scores[s : s + step, None, :], rel_scores[s : s + step, :, None]
        above[s : s + step] = (row > rel).sum(axis=2)
        equal[s : s + step] = (row == rel).sum(axis=2)
    tied = ((equal != 1) & valid).any(axis=1)
    ranks = np.where(valid, above + 1, np.iinfo(np.int64).max)
    ranks.sort(axis=1)
    order = np.arange(1, width + 1)[None, :]
    in_map = ranks <= map_k
    denom = np.minimum(m, map_k) if norm == "min" else m
    ap = np.where(in_map, order / np.where(in_map, ranks, 1), 0.0).sum(axis=1) / denom
    hits = np.stack([(ranks <= k).sum(axis=1) / m for k in ks], axis=1)
    any_hit = np.stack([(ranks[:, 0] <= k).astype(np.float64) for k in ks], axis=1)
    return ap, hits, any_hit, tied


def retrieval_metrics(
    score_block: Callable[[int, int], np.ndarray],
    relevant: Sequence[np.ndarray],
    *,
    ks: Sequence[int] = (1, 5, 10),
    map_k: int = 10,
    norm: str = "min",
    block: int = 512,
) -> dict[str, float]:
    """Mean metrics over queries. ``score_block(start, stop)`` returns the (stop-start, N) scores of those queries.

    Only one block of scores exists at a time, so memory is O(block * N).
    """
    if norm not in ("min", "all"):
        raise ValueError("norm must be 'min' or 'all'")
    n = len(relevant)
    ap_sum = 0.0
    hit_sum = np.zeros(len(ks))
    any_sum = np.zeros(len(ks))
    for start in range(0, n, block):
        stop = min(n, start + block)
        scores = np.asarray(score_block(start, stop), dtype=np.float64)
        rels = [np.unique(np.asarray(r)) for r in relevant[start:stop]]
        ap, hits, any_hit, tied = untied_metrics(scores, rels, ks, map_k, norm)
        ap_sum += ap[~tied].sum()
        hit_sum += hits[~tied].sum(axis=0)
        any_sum += any_hit[~tied].sum(axis=0)
        for q in np.flatnonzero(tied):  # ties among a query's relevant items: exact expectations, one by one
            ap_q, hits_q, any_q = query_metrics(scores[q], rels[q], ks, map_k, norm)
            ap_sum += ap_q
            hit_sum += hits_q
            any_sum += any_q
    out = {f"mAP@{map_k}": ap_sum / n}
    out.update({f"R@{k}": float(h / n) for k, h in zip(ks, any_sum)})
    out.update({f"R@{k}_share": float(h / n) for k, h in zip(ks, hit_sum)})
    return out


def group_indices(keys: Sequence[str], universe: Sequence[str]) -> list[np.ndarray]:
    """For each key of ``keys``, the positions in ``universe`` holding that key."""
    where: dict[str, list[int]] = {}
    for i, u in enumerate(universe):
        where.setdefault(u, []).append(i)
    missing = [k for k in keys if k not in where]
    if missing:
        raise KeyError(f"{len(missing)} queries have no relevant item, e.g. {missing[0]!r}")
    return [np.asarray(where[k]) for k in keys]


ScoreFn = Callable[[slice, slice], np.ndarray]


def matrix_scores(matrix: np.ndarray) -> ScoreFn:
    """A ScoreFn over an in-memory (A, T) similarity matrix."""
    return lambda audio, captions: matrix[audio, captions]


def embedding_scores(audio_emb: np.ndarray, text_emb: np.ndarray) -> ScoreFn:
    """A ScoreFn computing blocks of audio_emb @ text_emb.T on demand (never the whole matrix)."""
    return lambda audio, captions: audio_emb[audio] @ text_emb[captions].T


def mean_scores(fns: Sequence[ScoreFn]) -> ScoreFn:
    """A ScoreFn averaging other ScoreFns block by block (similarity-averaged ensembles, Munakata et al. 2024)."""
    if not fns:
        raise ValueError("mean_scores needs at least one score function")
    return lambda audio, captions: sum(f(audio, captions) for f in fns) / len(fns)


def constant_scores(n_audio: int, n_captions: int) -> ScoreFn:
    """A ScoreFn of zeros (a random ranking: chance metrics), one block at a time."""
    return lambda audio, captions: np.zeros(
        (len(range(n_audio)[audio]), len(range(n_captions)[captions])), np.float32)


def bidirectional_metrics(
    scores: ScoreFn | np.ndarray,
    audio_ids: Sequence[str],
    caption_audio_ids: Sequence[str],
    *,
    ks: Sequence[int] = (1, 5, 10),
    map_k: int = 10,
    block: int = 512,
) -> dict[str, float]:
    """Text -> audio and audio -> text metrics of the audio x caption similarity ``scores``.

    ``scores(audio_slice, caption_slice)`` returns that block of the (A, T) similarity (or pass the matrix).
    Keys: ``t2a/mAP@10``, ``t2a/R@1`` ..., ``a2t/mAP@10``, ``a2t/R@1`` (a hit when any of the clip's captions
    is in the top k), ``a2t/R@1_share`` (share of its captions in the top k) .... a2t mAP@10 normalises by
    min(m, 10) (Xie et al. 2024 / DCASE); the authors of Primus et al. 2024 report text -> audio only.
    """
    fn = matrix_scores(scores) if isinstance(scores, np.ndarray) else scores
    n_audio, n_captions = len(audio_ids), len(caption_audio_ids)
    everything_a, everything_c = slice(0, n_audio), slice(0, n_captions)
    t2a = retrieval_metrics(
        lambda s, e: fn(everything_a, slice(s, e)).T,
        group_indices(list(caption_audio_ids), list(audio_ids)),
        ks=ks, map_k=map_k, block=block,
    )
    a2t = retrieval_metrics(
        lambda s, e: fn(slice(s, e), everything_c),
        group_indices(list(audio_ids), list(caption_audio_ids)),
        ks=ks, map_k=map_k, block=block,
    )
    t2a = {k: v for k, v in t2a.items() if not k.endswith("_share")}  # one relevant clip: share = any-hit
    return {**{f"t2a/{k}": v for k, v in t2a.items()}, **{f"a2t/{k}": v for k, v in a2t.items()}}


def multi_relevance_metrics(scores: np.ndarray, queries: list[tuple[int, np.ndarray]], k: int = 16) -> dict[str, float]:
    """Text -> audio mAP@k with several relevant clips per query (DCASE 2025 task 6, official baseline).

    For a query with m relevant clips: AP@k = 1/m * sum over relevant clips ranked in the top k of
    (relevant clips in the top rank) / rank; ties count at their expected value. ``scores`` (A, T) audio x
    caption; ``queries``: (caption index, relevant clip indices), e.g. from ``salsa2.evaluation.judgements``.
    """
    captions = np.array([c for c, _ in queries], dtype=np.int64)
    relevant = [r for _, r in queries]
    out = retrieval_metrics(lambda s, e: scores[:, captions[s:e]].T, relevant, ks=(k,), map_k=k, norm="all")
    return {f"t2a_multi/mAP@{k}": out[f"mAP@{k}"]}
