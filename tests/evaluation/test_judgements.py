"""Multi-relevance judgement files (DCASE 2025 task 6; salsa2.evaluation.judgements) mapped onto the prepared
captions and clips."""

from __future__ import annotations

import pandas as pd
import pytest

from salsa2.data.tables import write_tables
from salsa2.evaluation.judgements import read_relevance, write_judgements
from salsa2.utils.errors import UserError


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
                  "relevant": ['["a/x.flac", "a/z.flac"]', '["a/x.flac", "a/z.flac"]',
                               '["a/y.flac", "a/z.flac"]']}).to_csv(
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
                  "relevant": ['["a/x.flac"]', '["a/x.flac"]', '["a/y.flac"]']}).to_csv(tmp_path / "rel.csv",
                                                                                        index=False)
    queries = read_relevance(tmp_path / "rel.csv", "demo", tmp_path / "prepared", ["demo/a/x#0", "demo/a/y#0"],
                             ["demo/a/x", "demo/a/y"])
    assert [(q, r.tolist()) for q, r in queries] == [(0, [0]), (1, [1])]


# Clotho evaluation names as published: HTML entities (with ';') and dots inside the stem
NAMES = ["Pensol - le Moulin cours d&#39;eau.wav", "bird_in_rain.wav", "20091217.17.fountain.wav",
         "Rock &amp; Roll drums.wav"]


def clotho_eval_tables(root):
    """Prepared tables of a tiny Clotho: the four NAMES in the evaluation split (test), two captions each."""
    ids = [f"clotho/evaluation/{n[:-4]}" for n in NAMES]
    audio = pd.DataFrame({"audio_id": ids, "dataset": "clotho", "split": "test",
                          "path": [f"/data/unpacked/clotho/audio/evaluation/{n}" for n in NAMES],
                          "duration": 20.0, "sample_rate": 44100, "channels": 1})
    captions = pd.DataFrame({"caption_id": [f"{a}#{k}" for a in ids for k in range(2)],
                             "audio_id": [a for a in ids for _ in range(2)], "index": [0, 1] * len(ids),
                             "text": [f"Sound {i} take {k}." for i in range(len(ids)) for k in range(2)],
                             "raw_text": [f"Sound {i} take {k}." for i in range(len(ids)) for k in range(2)]})
    write_tables(root, audio, captions)
    return ids, list(captions["caption_id"])


def test_dcase2025_judgements_keep_file_names_with_semicolons(tmp_path):
    """The task's metadata_eval.csv (query, a Python list of file names) converted by prepare and read back: a
    name holding '&#39;' or '&amp;' (a ';' inside) stays one relevant clip, no clip of a query is lost."""
    ids, caption_ids = clotho_eval_tables(tmp_path / "prepared")
    pd.DataFrame({"query": ["Sound 0 take 1.", "Sound 2 take 0."],
                  "audio_filenames": [str([NAMES[0], NAMES[1], NAMES[3]]), str([NAMES[2], NAMES[0]])]}).to_csv(
        tmp_path / "metadata_eval.csv", index=False)
    assert write_judgements(tmp_path / "metadata_eval.csv", "clotho", tmp_path / "prepared",
                            tmp_path / "judgements.csv") == 2
    queries = read_relevance(tmp_path / "judgements.csv", "clotho", tmp_path / "prepared", caption_ids, ids)
    assert [(q, r.tolist()) for q, r in queries] == [(1, [0, 1, 3]), (4, [0, 2])]
    table = pd.read_csv(tmp_path / "judgements.csv")
    assert table["file"].tolist() == [f"evaluation/{NAMES[0]}", f"evaluation/{NAMES[2]}"]


def test_judgements_reject_a_joined_list_and_an_unknown_query(tmp_path):
    ids, caption_ids = clotho_eval_tables(tmp_path / "prepared")
    pd.DataFrame({"caption": ["Sound 1 take 0."], "file": [f"evaluation/{NAMES[1]}"],
                  "relevant": [f"evaluation/{NAMES[1]};evaluation/{NAMES[2]}"]}).to_csv(tmp_path / "old.csv",
                                                                                      index=False)
    with pytest.raises(UserError, match=r"old.csv row 2: relevant .* is not a JSON list"):
        write_judgements(tmp_path / "old.csv", "clotho", tmp_path / "prepared", tmp_path / "j.csv")
    pd.DataFrame({"query": ["Never said."], "audio_filenames": [str(NAMES[:1])]}).to_csv(tmp_path / "d.csv",
                                                                                        index=False)
    with pytest.raises(UserError, match="row 2: query 'Never said.' is no test caption of dataset 'clotho'"):
        write_judgements(tmp_path / "d.csv", "clotho", tmp_path / "prepared", tmp_path / "j.csv")
    assert not (tmp_path / "j.csv").exists()


def test_judgements_command_converts_the_dcase_file(tmp_path):
    from typer.testing import CliRunner

    from salsa2.cli import app

    ids, caption_ids = clotho_eval_tables(tmp_path / "prepared")
    pd.DataFrame({"query": ["Sound 3 take 0."], "audio_filenames": [str([NAMES[3], NAMES[0]])]}).to_csv(
        tmp_path / "metadata_eval.csv", index=False)
    result = CliRunner().invoke(app, ["judgements", str(tmp_path / "metadata_eval.csv"), "--data",
                                      str(tmp_path / "prepared"), "--out", str(tmp_path / "j.csv")])
    assert result.exit_code == 0, result.output
    queries = read_relevance(tmp_path / "j.csv", "clotho", tmp_path / "prepared", caption_ids, ids)
    assert [(q, r.tolist()) for q, r in queries] == [(6, [0, 3])]
