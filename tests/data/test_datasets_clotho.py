"""Clotho v2.1 end to end against a local mirror of its Zenodo record: download, verify, extract, tables,
spectrogram cache with a rejects report."""

from __future__ import annotations

import csv

import pandas as pd
import py7zr
import pytest
from helpers.file_server import FileServer, md5, write_clip

from salsa2.data.archive import UnsafeArchiveError
from salsa2.data.datasets import DATASETS, clotho
from salsa2.utils.download import ChecksumError, record_path
from salsa2.utils.errors import UserError
from salsa2.features.logmel_cache import SpectrogramCache, build_cache
from salsa2.audio.frontends import FrontendConfig
from salsa2.data.prepare import prepare
from salsa2.data.tables import read_tables

# subset -> clip name -> kind
CLIPS = {
    "development": {"rain on a roof.wav": "noise", "dog, barking.wav": "noise", "broken.wav": "corrupt",
                    "quiet room.wav": "silent"},
    "validation": {"birds.wav": "noise", "short.wav": "short", "nothing.wav": "empty"},
    "evaluation": {"train passing.wav": "noise", "bell.wav": "noise"},
}


def publish(pub, work, evil: bool = False) -> dict:
    """Write the Zenodo files (7z per subset with ``<subset>/<clip>.wav``, caption CSVs); return md5s."""
    sums = {}
    for i, (subset, clips) in enumerate(CLIPS.items()):
        arc = pub / f"clotho_audio_{subset}.7z"
        with py7zr.SevenZipFile(arc, "w") as sz:
            for j, (name, kind) in enumerate(clips.items()):
                wav = write_clip(work / subset / name, seconds=0.2 if kind == "short" else 0.8, sr=8000,
                                 kind="noise" if kind == "short" else kind, seed=10 * i + j)
                sz.write(wav, f"{subset}/{name}")
            if evil:
                sz.writestr(b"X", "development/../../outside.wav")
        cap = pub / f"clotho_captions_{subset}.csv"
        with open(cap, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(["file_name", *clotho.CAPTION_COLUMNS])
            for name in clips:
                stem = name[:-4]
                w.writerow([name, *[f"  {stem} caption\u0301 {k}  " for k in range(1, 6)]])
        sums[subset] = {"audio": (arc.name, md5(arc)), "captions": (cap.name, md5(cap))}
    return sums


@pytest.fixture
def mirror(tmp_path, monkeypatch):
    pub = tmp_path / "zenodo"
    pub.mkdir()
    sums = publish(pub, tmp_path / "work")
    for subset, (split, audio_dir, _) in list(clotho.SUBSETS.items()):
        monkeypatch.setitem(clotho.SUBSETS, subset, (split, audio_dir, sums[subset]))
    with FileServer(pub) as srv:
        yield srv


def test_clotho_download_prepare_and_cache(mirror, tmp_path):
    root = tmp_path / "clotho"
    out = tmp_path / "prepared"
    rejects = prepare([{"name": "clotho", "args": {"root": str(root), "base_url": mirror.url}}], out)
    audio, captions = read_tables(out)
    # splits as published: development -> train, validation -> val, evaluation -> test
    assert audio.groupby("split").size().to_dict() == {"train": 3, "val": 3, "test": 2}
    assert set(audio["dataset"]) == {"clotho"}
    assert "clotho/development/dog, barking" in set(audio["audio_id"])
    assert captions.groupby("audio_id").size().eq(5).all()
    row = captions.set_index("caption_id").loc["clotho/evaluation/bell#2"]
    assert row["raw_text"] == "  bell caption\u0301 3  "
    assert row["text"] == "bell caption\u0301 3".replace("n\u0301", "\u0144")  # NFC + trimmed whitespace
    # the corrupt file is rejected when its header is read, with the reason
    assert rejects[["audio_id", "reason"]].values.tolist() == [["clotho/development/broken", "corrupt"]]
    assert pd.read_csv(out / "rejects.csv")["reason"].tolist() == ["corrupt"]
    # archives are removed after extraction; every request went to the published file names
    assert not (root / "archives" / "clotho_audio_development.7z").exists()
    assert {p for p, _ in mirror.requests} == {f"/{n}" for s in clotho.SUBSETS.values() for n, _ in s[2].values()}
    # the spectrogram cache rejects the silent, the empty and the too-short clip, with a reason per file
    cfg = FrontendConfig(sample_rate=8000, n_fft=256, win_length=200, hop_length=80, n_mels=16, f_min=0.0,
                         f_max=4000.0)
    rej = build_cache(tmp_path / "cache", audio, cfg, min_duration=0.5, workers=1)
    assert dict(zip(rej["audio_id"], rej["reason"])) == {"clotho/development/quiet room": "silent",
                                                        "clotho/validation/short": "too_short",
                                                        "clotho/validation/nothing": "empty"}
    cache = SpectrogramCache(tmp_path / "cache", expect=cfg)
    assert len(cache) == 5 and cache.get("clotho/evaluation/bell").shape == (16, 1 + 6400 // 80)
    # a second run reuses what is on disk: no new requests
    n = len(mirror.requests)
    DATASETS.build("clotho", root=str(root), base_url=mirror.url)
    assert all(p.endswith(".csv") for p, _ in mirror.requests[n:])  # captions re-verified locally, audio kept


def test_clotho_checksum_mismatch_is_refused(mirror, tmp_path, monkeypatch):
    split, audio_dir, files = clotho.SUBSETS["validation"]
    monkeypatch.setitem(clotho.SUBSETS, "validation",
                        (split, audio_dir, {**files, "audio": (files["audio"][0], "f" * 32)}))
    with pytest.raises(ChecksumError, match="clotho_audio_validation.7z.*publisher lists f{32}"):
        DATASETS.build("clotho", root=str(tmp_path / "c"), base_url=mirror.url, subsets=["validation"])
    assert not (tmp_path / "c" / "archives" / "clotho_audio_validation.7z").exists()
    assert not (tmp_path / "c" / "audio" / "validation").exists()


def test_clotho_malicious_archive_is_refused(tmp_path, monkeypatch):
    pub = tmp_path / "zenodo"
    pub.mkdir()
    with monkeypatch.context() as m:
        m.setattr(py7zr.py7zr, "check_archive_path", lambda _: True)
        sums = publish(pub, tmp_path / "work", evil=True)
    for subset, (split, audio_dir, _) in list(clotho.SUBSETS.items()):
        monkeypatch.setitem(clotho.SUBSETS, subset, (split, audio_dir, sums[subset]))
    with FileServer(pub) as srv, pytest.raises(UnsafeArchiveError,
                                                match=r"member 'development/\.\./\.\./outside\.wav' refused"):
        DATASETS.build("clotho", root=str(tmp_path / "c"), base_url=srv.url, subsets=["evaluation"])
    assert not (tmp_path / "outside.wav").exists() and not (tmp_path / "c" / "outside.wav").exists()
    assert not (tmp_path / "c" / "audio" / "evaluation").exists()


def test_truncated_archive_without_checksum_is_not_trusted_and_a_rerun_recovers(tmp_path, monkeypatch):
    pub = tmp_path / "zenodo"
    pub.mkdir()
    sums = publish(pub, tmp_path / "work")
    for subset, (split, audio_dir, _) in list(clotho.SUBSETS.items()):
        monkeypatch.setitem(clotho.SUBSETS, subset, (split, audio_dir, sums[subset]))
    arc = pub / "clotho_audio_validation.7z"
    whole = arc.read_bytes()
    arc.write_bytes(whole[: len(whole) // 2])  # the mirror serves a truncated copy (and states its length)
    root = tmp_path / "c"
    kept = root / "archives" / arc.name
    with FileServer(pub) as srv:
        with pytest.raises(UserError, match=r"clotho_audio_validation\.7z.*not whole.*run again") as err:
            DATASETS.build("clotho", root=str(root), base_url=srv.url, subsets=["validation"], verify=False)
        assert "\n" not in str(err.value)
        assert not kept.exists() and not record_path(kept).exists()  # nothing trusted
        arc.write_bytes(whole)  # the mirror is repaired: running again just works
        prepared = DATASETS.build("clotho", root=str(root), base_url=srv.url, subsets=["validation"], verify=False)
    assert len(prepared.audio) + len(prepared.rejects) == len(CLIPS["validation"])
