"""Moment annotations: lighthouse's jsonl (Clotho-Moment, CASTELLA) and CASTELLA's own json read as published,
written back unchanged, audio found by vid; a malformed file is one line naming the file and line/recording."""

import json

import pytest

from salsa2.moments.data import (AnnotationError, MomentQuery, audio_file, ground_truth, read_moments,
                                 write_moment_jsonl)

# Rows in the published formats (values made up; keys, types and order as in the released files).
CLOTHO_MOMENT = [
    {"qid": "32694", "query": "A toilet flushes.", "duration": 60, "vid": "Singapore_0.0_60.0",
     "relevant_windows": [[41.1, 48.1]], "fg_dB": 0.74},
    {"qid": "32695", "query": "People shout.", "duration": 60, "vid": "Singapore_1.0_61.0",
     "relevant_windows": [[26.6, 51.6]], "fg_dB": -1.9},
]
CASTELLA_JSON = [
    {"yid": "-0awng26xQ8", "global_caption": "A man talks while driving", "duration": 299, "num_moments": 2,
     "moments": [{"local_caption": "A man starts the car engine", "timestamps": [[70, 76]]},
                 {"local_caption": "A man signals and drives", "timestamps": [[177, 190], [52, 66]]}]},
    {"yid": "rqfQRErjfk8", "global_caption": "Music and a crowd", "duration": 191, "num_moments": 1,
     "moments": [{"local_caption": "Loud cheering", "timestamps": [[169, 190]]}]},
]


def _jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_jsonl_reads_and_writes_back_unchanged(tmp_path):
    src = _jsonl(tmp_path / "clotho_moment_val_release.jsonl", CLOTHO_MOMENT)
    queries = read_moments(src)
    assert queries[0] == MomentQuery("32694", "A toilet flushes.", "Singapore_0.0_60.0", 60, ((41.1, 48.1),))
    assert queries[1].extra == {"fg_dB": -1.9}
    write_moment_jsonl(tmp_path / "copy.jsonl", queries)
    assert (tmp_path / "copy.jsonl").read_text() == src.read_text()
    assert ground_truth(queries) == {"32694": [[41.1, 48.1]], "32695": [[26.6, 51.6]]}


def test_castella_json_gives_lighthouse_ids(tmp_path):
    path = tmp_path / "val.json"
    path.write_text(json.dumps(CASTELLA_JSON))
    queries = read_moments(path)
    assert [q.qid for q in queries] == ["-0awng26xQ8_1", "-0awng26xQ8_2", "rqfQRErjfk8_1"]
    assert queries[1].query == "A man signals and drives" and queries[1].vid == "-0awng26xQ8"
    assert queries[1].windows == ((177, 190), (52, 66)) and queries[2].duration == 191


@pytest.mark.parametrize("line, message", [
    ("{not json", r"bad\.jsonl:2: not a JSON object"),
    ('{"qid": "b", "query": "q", "vid": "v", "duration": 60}', r"bad\.jsonl:2: missing key\(s\) relevant_windows"),
    ('{"qid": "b", "query": "q", "vid": "v", "duration": 60, "relevant_windows": [[5, 3]]}',
     r"bad\.jsonl:2: window \[5, 3\] needs 0 <= start <= end"),
    ('{"qid": "b", "query": "q", "vid": "v", "duration": "60", "relevant_windows": [[1, 3]]}',
     r"bad\.jsonl:2: duration must be a number"),
    ('{"qid": "b", "query": "", "vid": "v", "duration": 60, "relevant_windows": [[1, 3]]}',
     r"bad\.jsonl:2: query must be a non-empty string"),
    ('{"qid": "b", "query": "q", "vid": "v", "duration": 60, "relevant_windows": []}',
     r"bad\.jsonl:2: relevant windows must be a non-empty list"),
    ('{"qid": "a", "query": "q", "vid": "v", "duration": 60, "relevant_windows": [[1, 3]]}',
     r"bad\.jsonl:2: qid 'a' repeats .*bad\.jsonl:1"),
])
def test_malformed_jsonl_names_file_and_line(tmp_path, line, message):
    path = tmp_path / "bad.jsonl"
    good = {"qid": "a", "query": "q", "vid": "v", "duration": 60, "relevant_windows": [[1, 3]]}
    path.write_text(json.dumps(good) + "\n" + line + "\n")
    before = path.read_bytes()
    with pytest.raises(AnnotationError, match=message) as err:
        read_moments(path)
    assert "\n" not in str(err.value)
    assert path.read_bytes() == before


def test_malformed_castella_json_names_the_recording(tmp_path):
    rows = json.loads(json.dumps(CASTELLA_JSON))
    del rows[1]["moments"][0]["timestamps"]
    (tmp_path / "val.json").write_text(json.dumps(rows))
    with pytest.raises(AnnotationError, match=r"val\.json: recording 1 \('rqfQRErjfk8'\), moment 1: needs keys"):
        read_moments(tmp_path / "val.json")
    (tmp_path / "x.json").write_text('{"yid": 1}')
    with pytest.raises(AnnotationError, match="expected a JSON list of recordings"):
        read_moments(tmp_path / "x.json")
    with pytest.raises(AnnotationError, match="unknown annotation format '.csv'"):
        (tmp_path / "a.csv").write_text("")
        read_moments(tmp_path / "a.csv")
    with pytest.raises(AnnotationError, match="no such annotation file"):
        read_moments(tmp_path / "missing.jsonl")


def test_audio_file_by_vid(tmp_path):
    (tmp_path / "Singapore_0.0_60.0.flac").write_bytes(b"")
    assert audio_file(tmp_path, "Singapore_0.0_60.0") == tmp_path / "Singapore_0.0_60.0.flac"
    with pytest.raises(AnnotationError, match="no audio file for recording 'rqfQRErjfk8'"):
        audio_file(tmp_path, "rqfQRErjfk8")
