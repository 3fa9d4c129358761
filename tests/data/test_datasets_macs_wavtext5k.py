"""MACS (YAML captions + TAU zips, md5-checked) and WavText5K (CSV + per-clip links, Deshmukh et al. 2023 captions)
against local mirrors."""

from __future__ import annotations

import csv
import zipfile

import pytest
import yaml
from helpers.file_server import FileServer, md5, write_clip

from salsa2.data.datasets import DATASETS, macs
from salsa2.data.datasets.wavtext5k import title_description
from salsa2.utils.download import ChecksumError


@pytest.fixture
def tau_mirror(tmp_path, monkeypatch):
    pub = tmp_path / "pub"
    files = [{"filename": "airport-barcelona-0-0-a.wav",
              "annotations": [{"annotator_id": 1, "sentence": "people talk in a hall", "tags": ["adults_talking"]},
                              {"annotator_id": 2, "sentence": "a busy airport", "tags": []}]},
             {"filename": "park-paris-9-1-a.wav",
              "annotations": [{"annotator_id": 3, "sentence": "birds sing in a park", "tags": ["birds"]}]}]
    pub.mkdir()
    (pub / "MACS.yaml").write_text(yaml.safe_dump({"files": files}))
    sums = {}
    for part, members in ((1, ["airport-barcelona-0-0-a.wav", "bus-lyon-1-1-a.wav"]), (9, ["park-paris-9-1-a.wav"])):
        arc = pub / f"{macs.TAU_PREFIX}.audio.{part}.zip"
        with zipfile.ZipFile(arc, "w") as zf:
            for k, name in enumerate(members):
                wav = write_clip(tmp_path / "work" / name, seed=part + k)
                zf.write(wav, f"{macs.TAU_PREFIX}/audio/{name}")
        sums[part] = md5(arc)
    monkeypatch.setattr(macs, "TAU_ZIPS", sums)
    monkeypatch.setattr(macs, "CAPTIONS", ("MACS.yaml", md5(pub / "MACS.yaml")))
    with FileServer(pub) as srv:
        yield srv


def test_macs_from_yaml_and_tau_zips(tau_mirror, tmp_path):
    prepared = DATASETS.build("macs", root=str(tmp_path / "macs"), base_url=tau_mirror.url, tau_url=tau_mirror.url)
    assert prepared.audio["audio_id"].tolist() == ["macs/airport-barcelona-0-0-a", "macs/park-paris-9-1-a"]
    assert set(prepared.audio["split"]) == {"train"}
    assert prepared.captions.groupby("audio_id")["text"].apply(list).to_dict() == {
        "macs/airport-barcelona-0-0-a": ["people talk in a hall", "a busy airport"],
        "macs/park-paris-9-1-a": ["birds sing in a park"]}
    # only MACS clips are extracted, flat, and the zips are gone
    assert sorted(p.name for p in (tmp_path / "macs/audio").iterdir()) == ["airport-barcelona-0-0-a.wav",
                                                                          "park-paris-9-1-a.wav"]
    assert not any((tmp_path / "macs/archives").iterdir())


def test_macs_checksum_mismatch(tau_mirror, tmp_path, monkeypatch):
    monkeypatch.setattr(macs, "TAU_ZIPS", {1: "0" * 32})
    with pytest.raises(ChecksumError, match=r"audio\.1\.zip"):
        DATASETS.build("macs", root=str(tmp_path / "macs"), base_url=tau_mirror.url, tau_url=tau_mirror.url)
    assert not (tmp_path / "macs/audio").exists()


@pytest.mark.parametrize("title,description,expected", [
    ("Forest", "Birds singing, drive away, fly.", "Forest. Birds singing, drive away, fly."),
    ("Wind", "", "Wind"),
    ("Paris apartment. Open window", "Paris apartment.  The first floor.",
     "Paris apartment. Open window. Paris apartment. The first floor."),
    ("Glass burst", "Glass burst", "Glass burst"),
    ("Help!", "A call for help.", "Help! A call for help."),
])
def test_wavtext5k_caption_is_title_dot_description(title, description, expected):
    assert title_description(title, description) == expected


def test_wavtext5k_download_and_missing_link(tmp_path):
    pub = tmp_path / "pub"
    write_clip(pub / "UPLOAD/wav/0100.wav", seed=1)
    write_clip(pub / "UPLOAD/wav/0740.wav", seed=2)
    with FileServer(pub) as srv:
        rows = [("https://x/0100.html", f"{srv.url}/UPLOAD/wav/0100.wav", "Forest", "Birds singing.", "0100.wav", ""),
                ("https://x/0740.html", f"{srv.url}/UPLOAD/wav/0740.wav", "Rain and Storm 2", "", "0740.wav", ""),
                ("https://x/0477.html", f"{srv.url}/UPLOAD/wav/0477.wav", "Wilhelm scream", "", "0477.wav", "")]
        with open(pub / "WavText5K.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["view_link", "download_link", "title", "description", "fname", "tags"])
            w.writerows(rows)
        prepared = DATASETS.build("wavtext5k", root=str(tmp_path / "wt"), csv_url=f"{srv.url}/WavText5K.csv")
    assert prepared.captions["text"].tolist() == ["Forest. Birds singing.", "Rain and Storm 2"]
    assert prepared.captions["raw_text"].tolist() == ["Forest. Birds singing.", "Rain and Storm 2"]
    assert prepared.rejects[["audio_id", "reason"]].values.tolist() == [["wavtext5k/0477", "missing"]]
    assert (tmp_path / "wt/audio/0100.wav").exists() and not (tmp_path / "wt/audio/0477.wav").exists()
