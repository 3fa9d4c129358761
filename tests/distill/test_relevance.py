"""Caption-similarity relevances (Xie et al. 2024) and multi-relevance judgement files (DCASE 2025 task 6)."""

import math

import numpy as np
import pandas as pd
import pytest
import torch

from salsa2.evaluation.judgements import read_relevance
from salsa2.distill.relevance import CaptionRelevance, batch_relevance, logistic_relevance, reduce_to_clips
from salsa2.data.tables import write_tables


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


def test_read_relevance_maps_files_and_captions_to_indices(tmp_path):
    audio = pd.DataFrame({"audio_id": ["demo/a/x", "demo/a/y", "demo/a/z"], "dataset": "demo", "split": "test",
                          "path": ["x", "y", "z"], "duration": 1.0, "sample_rate": 16000, "channels": 1})
    captions = pd.DataFrame({"caption_id": ["demo/a/x#0", "demo/a/x#1", "demo/a/y#0", "demo/a/z#0"],
                             "audio_id": ["demo/a/x", "demo/a/x", "demo/a/y", "demo/a/z"], "index": [0, 1, 0, 0],
                             "text": ["A dog barks.", "A dog barks.", "Rain falls", "Dog and rain"],
                             "raw_text": ["A dog barks.", "A dog barks.", "Rain falls", "Dog and rain"]})
    write_tables(tmp_path / "prepared", audio, captions)
    pd.DataFrame({"caption": ["A dog barks.", "A dog barks.", "Rain falls"],
                  "file": ["a/x.flac", "a/x.flac", "a/y.flac"],
                  "relevant": ["a/x.flac;a/z.flac", "a/x.flac;a/z.flac", "a/y.flac;a/z.flac"]}).to_csv(
        tmp_path / "rel.csv", index=False)
    caption_ids = ["demo/a/y#0", "demo/a/x#0", "demo/a/x#1", "demo/a/z#0"]
    audio_ids = ["demo/a/z", "demo/a/x", "demo/a/y"]
    queries = read_relevance(tmp_path / "rel.csv", "demo", tmp_path / "prepared", caption_ids, audio_ids)
    assert [(q, r.tolist()) for q, r in queries] == [(1, [0, 1]), (2, [0, 1]), (0, [0, 2])]
    with pytest.raises(ValueError, match="row 2"):
        read_relevance(tmp_path / "rel.csv", "other", tmp_path / "prepared", caption_ids, audio_ids)


def test_a_repeated_caption_dropped_by_prepare_is_one_query(tmp_path):
    """prepare keeps one of two identical caption rows of a clip; the judgements still list both: the second is
    skipped as a repeat, not an error (the demo's paraphrases repeat now and then)."""
    audio = pd.DataFrame({"audio_id": ["demo/a/x", "demo/a/y"], "dataset": "demo", "split": "test",
                          "path": ["x", "y"], "duration": 1.0, "sample_rate": 16000, "channels": 1})
    captions = pd.DataFrame({"caption_id": ["demo/a/x#0", "demo/a/y#0"], "audio_id": ["demo/a/x", "demo/a/y"],
                             "index": [0, 0], "text": ["A dog barks.", "Rain falls"],
                             "raw_text": ["A dog barks.", "Rain falls"]})
    write_tables(tmp_path / "prepared", audio, captions)
    pd.DataFrame({"caption": ["A dog barks.", "A dog barks.", "Rain falls"], "file": ["a/x.flac"] * 2 + ["a/y.flac"],
                  "relevant": ["a/x.flac", "a/x.flac", "a/y.flac"]}).to_csv(tmp_path / "rel.csv", index=False)
    queries = read_relevance(tmp_path / "rel.csv", "demo", tmp_path / "prepared", ["demo/a/x#0", "demo/a/y#0"],
                             ["demo/a/x", "demo/a/y"])
    assert [(q, r.tolist()) for q, r in queries] == [(0, [0]), (1, [1])]
