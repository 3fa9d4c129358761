"""The embedded demo dataset: deterministic whatever the worker count, and a fair small retrieval task (scenes and
captions as specified, captions that partly match other clips)."""

import hashlib
import json

import pandas as pd
import soundfile as sf

from salsa2.data.demo import KINDS, generate


def _digest(folder):
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            h.update(p.relative_to(folder).as_posix().encode())
            h.update(p.read_bytes())
    return h.hexdigest()


def test_same_seed_same_bytes_whatever_the_worker_count(tmp_path):
    generate(tmp_path / "a", 6, 2, 2, seed=3, workers=1)
    generate(tmp_path / "b", 6, 2, 2, seed=3, workers=2)
    generate(tmp_path / "c", 6, 2, 2, seed=4, workers=1)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    assert _digest(tmp_path / "a") != _digest(tmp_path / "c")


def test_scenes_and_captions_follow_the_spec(tiny_demo):
    clips = pd.read_csv(tiny_demo.raw / "clips.csv")
    caps = pd.read_csv(tiny_demo.raw / "captions.csv")
    assert len(KINDS) >= 15
    assert clips["duration"].between(5, 30).all()
    n_events = clips["events"].map(lambda e: len(json.loads(e)))
    assert n_events.between(1, 3).all() and n_events.nunique() == 3
    assert (caps.groupby("file").size() == 5).all()
    assert set(clips["split"]) == {"train", "val", "test"}
    # Attributes appear in words: loudness and pitch adjectives/adverbs, and order words.
    text = " ".join(caps["caption"]).lower()
    for word in ("then", "high-pitched", "quiet"):
        assert word in text
    # Captions are paraphrases, not one fixed string per clip.
    assert caps.groupby("file")["caption"].nunique().mean() > 3
    info = sf.info(str(tiny_demo.raw / clips["file"].iloc[0]))
    assert info.samplerate == 16000 and abs(info.duration - clips["duration"].iloc[0]) < 1e-3


def test_captions_describe_other_clips_too(tiny_demo):
    """Partial matches exist: a caption's mentioned events are often all present in other clips."""
    rel = pd.read_csv(tiny_demo.raw / "relevance_test.csv")
    relevant = rel["relevant"].map(json.loads)  # JSON lists (salsa2.evaluation.judgements)
    assert all(own in files for own, files in zip(rel["file"], relevant))
    shared = relevant.map(len) > 1
    assert shared.mean() > 0.1
