"""Caption-similarity relevances (Xie et al. 2024; salsa2.distill.relevance)."""

import math

import numpy as np
import torch

from salsa2.distill.relevance import CaptionRelevance, batch_relevance, logistic_relevance, reduce_to_clips


def test_logistic_fit_of_seed_001():
    h = torch.tensor([1.0, 0.0, 0.5])
    expected = [1 / (1 + math.exp(2.73 - 4.58 * v)) for v in (1.0, 0.0, 0.5)]
    torch.testing.assert_close(logistic_relevance(h), torch.tensor(expected))


def test_relevance_of_a_clip_comes_from_its_captions():
    # captions 0, 1 belong to clip 0, caption 2 to clip 1; embeddings chosen for exact cosines
    emb = torch.tensor([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]])
    positives = torch.tensor([[True, True, False], [False, False, True]])
    h = emb @ emb.T
    mx = reduce_to_clips(h, positives, "max")
    torch.testing.assert_close(mx, torch.tensor([[1.0, 1.0, 0.8], [0.0, 0.8, 1.0]]))
    mean = reduce_to_clips(h, positives, "mean")
    torch.testing.assert_close(mean, torch.tensor([[0.8, 0.8, 0.4], [0.0, 0.8, 1.0]]))
    torch.testing.assert_close(batch_relevance(emb, positives), logistic_relevance(mx))


def test_pairs_with_one_caption_per_clip_are_exactly_seed_001():
    g = torch.Generator().manual_seed(0)
    emb = torch.randn(5, 4, generator=g)
    e = torch.nn.functional.normalize(emb, dim=-1)
    eye = torch.eye(5, dtype=torch.bool)
    # g(x_i, y_j) = f(h(x_i, x_j)): rows are audios j, columns captions i
    torch.testing.assert_close(batch_relevance(emb, eye, "max"), logistic_relevance(e @ e.T).T)
    torch.testing.assert_close(batch_relevance(emb, eye, "mean"), logistic_relevance(e @ e.T).T)


def test_caption_relevance_blocks_follow_clip_identity():
    feats = np.array([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]], dtype=np.float32)
    rel = CaptionRelevance(feats, np.array([0, 0, 1]))
    # a pairs batch holding clip 0 twice (captions 0 and 1): both copies see both captions as references
    block = rel.block(np.array([0, 0, 1]), np.array([0, 1, 2]))
    assert torch.equal(block[0], block[1])
    torch.testing.assert_close(block[0], logistic_relevance(torch.tensor([1.0, 1.0, 0.8])))
