"""Prepared tables (salsa2.data.tables): a prepared set replaces the old one whole, never mixed with it, and never
replaces a folder of other files; the reject share counts clips, not dropped caption rows."""

from __future__ import annotations

import pandas as pd
import pytest

from salsa2.data.tables import read_tables, rejected_clips, write_prepared
from salsa2.utils.errors import UserError


def _tables(n: int):
    audio = pd.DataFrame({"audio_id": [f"a{i}" for i in range(n)], "path": [f"/x/{i}.wav" for i in range(n)],
                          "split": "train", "dataset": "d", "duration": 1.0, "sample_rate": 8000, "channels": 1})
    texts = [f"caption {n} {i}" for i in range(n)]
    captions = pd.DataFrame({"caption_id": [f"a{i}#0" for i in range(n)], "audio_id": audio["audio_id"],
                             "index": 0, "text": texts, "raw_text": texts})
    return audio, captions, pd.DataFrame({"audio_id": [], "path": [], "reason": []})


def test_killed_prepare_never_leaves_new_audio_with_old_captions(tmp_path, monkeypatch):
    out = tmp_path / "prepared"
    write_prepared(out, *_tables(2))
    real_to_csv = pd.DataFrame.to_csv

    def killed(self, *args, **kwargs):  # the process dies while writing the last file of the set
        real_to_csv(self, *args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(pd.DataFrame, "to_csv", killed)
    with pytest.raises(KeyboardInterrupt):
        write_prepared(out, *_tables(3))
    monkeypatch.undo()
    audio, captions = read_tables(out)
    assert len(audio) == 2 and captions["text"].str.startswith("caption 2 ").all()  # the old set, whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["prepared"]
    write_prepared(out, *_tables(3))
    audio, captions = read_tables(out)
    assert len(audio) == 3 and captions["text"].str.startswith("caption 3 ").all()


def test_prepare_refuses_to_replace_a_folder_holding_other_files(tmp_path):
    (tmp_path / "sounds").mkdir()
    (tmp_path / "sounds" / "dog.wav").write_bytes(b"RIFF")
    with pytest.raises(UserError, match=r"sounds: holds 'dog.wav', which is no prepared table; give a new"):
        write_prepared(tmp_path / "sounds", *_tables(1))
    assert (tmp_path / "sounds" / "dog.wav").read_bytes() == b"RIFF"


def test_reject_share_counts_clips_not_dropped_caption_rows():
    """Dropped duplicate/empty caption rows are listed in rejects.csv but do not count as rejected clips
    (the demo's paraphrases repeat now and then)."""
    rejects = pd.DataFrame({"audio_id": ["d/a", "d/a", "d/b", "d/c", "d/c"],
                            "reason": ["duplicate_caption", "empty_caption", "duplicate_caption", "corrupt",
                                       "no_caption"]})
    assert rejected_clips(rejects) == 1  # d/c: unreadable (and every caption row dropped); d/a, d/b keep captions
    assert rejected_clips(rejects.iloc[:0]) == 0
