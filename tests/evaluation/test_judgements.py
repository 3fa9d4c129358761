"""Multi-relevance judgement files (DCASE 2025 task 6; salsa2.evaluation.judgements) mapped onto the prepared
captions and clips."""

from __future__ import annotations

import pandas as pd
import pytest

from salsa2.data.tables import write_tables
from salsa2.evaluation.judgements import read_relevance


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
