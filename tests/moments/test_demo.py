"""The long-recording demo: deterministic, every ground-truth window lies where its clip was mixed in, and a
query's windows are the clips holding every sound kind its caption mentions."""

import json

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from salsa2.moments.data import read_moments
from salsa2.moments.demo import FG_DB, build_long_demo
from salsa2.utils.errors import UserError

SIZES = dict(recordings=3, min_seconds=40, max_seconds=70, min_clips=2, max_clips=4, seed=3)


@pytest.fixture(scope="module")
def long_demo(tiny_demo, tmp_path_factory):
    out = tmp_path_factory.mktemp("long") / "moments"
    build_long_demo(tiny_demo.raw, out, **SIZES)
    return out


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-12))


def test_same_seed_same_demo(long_demo, tiny_demo, tmp_path):
    build_long_demo(tiny_demo.raw, tmp_path / "again", **SIZES)
    assert (tmp_path / "again" / "moments.jsonl").read_text() == (long_demo / "moments.jsonl").read_text()
    for path in sorted((long_demo / "audio").iterdir()):
        np.testing.assert_array_equal(sf.read(path)[0], sf.read(tmp_path / "again" / "audio" / path.name)[0])
    build_long_demo(tiny_demo.raw, tmp_path / "other", **{**SIZES, "seed": 4})
    assert (tmp_path / "other" / "moments.jsonl").read_text() != (long_demo / "moments.jsonl").read_text()


def test_windows_are_where_the_clips_were_mixed(long_demo, tiny_demo):
    recordings = pd.read_csv(long_demo / "recordings.csv")
    assert len(recordings) == SIZES["recordings"]
    used = []
    for vid, seconds, clips in recordings[["vid", "duration", "clips"]].itertuples(index=False):
        mix, sr = sf.read(long_demo / "audio" / f"{vid}.flac")
        assert len(mix) == seconds * sr and SIZES["min_seconds"] <= seconds <= SIZES["max_seconds"]
        placed = json.loads(clips)
        assert all(a["end"] < b["start"] for a, b in zip(placed, placed[1:]))  # in order, no overlap
        for p in placed:
            used.append(p["source"])
            clip, _ = sf.read(tiny_demo.raw / p["source"])
            start = round(p["start"] * sr)
            assert p["start"] == round(p["start"], 1) and FG_DB[0] <= p["fg_dB"] <= FG_DB[1]
            assert p["end"] == pytest.approx(p["start"] + len(clip) / sr, abs=0.05)
            here = _corr(mix[start:start + len(clip)], clip)
            shifted = _corr(mix[start + sr // 3:start + sr // 3 + len(clip)], clip)
            assert here > 0.4 and here > shifted + 0.2, (vid, p, here, shifted)
    assert len(used) == len(set(used))  # each clip once


def test_queries_and_their_windows(long_demo, tiny_demo):
    queries = read_moments(long_demo / "moments.jsonl")
    recordings = pd.read_csv(long_demo / "recordings.csv").set_index("vid")
    captions = pd.read_csv(tiny_demo.raw / "captions.csv")
    clips = pd.read_csv(tiny_demo.raw / "clips.csv").set_index("file")
    kinds = {f: {e["kind"] for e in json.loads(ev)} for f, ev in clips["events"].items()}
    assert len(queries) == sum(len(json.loads(c)) for c in recordings["clips"])
    for q in queries:
        placed = json.loads(recordings.at[q.vid, "clips"])
        assert q.duration == recordings.at[q.vid, "duration"]
        assert q.query in set(captions.loc[captions["file"] == q.extra["source"], "caption"])
        mentioned = set(captions.loc[(captions["file"] == q.extra["source"]) & (captions["caption"] == q.query),
                                     "events"].iloc[0].split(";"))
        assert list(q.windows) == [(p["start"], p["end"]) for p in placed if mentioned <= kinds[p["source"]]]
        assert all(0 <= s < e <= q.duration for s, e in q.windows)
        assert recordings.at[q.vid, "background"] not in kinds[q.extra["source"]]


def test_too_few_clips_is_one_line(tiny_demo, tmp_path):
    with pytest.raises(UserError, match="lower moments.demo.recordings or max_clips"):
        build_long_demo(tiny_demo.raw, tmp_path / "x", recordings=10, max_clips=4)
    assert not (tmp_path / "x").exists()
