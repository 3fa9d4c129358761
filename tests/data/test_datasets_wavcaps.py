"""WavCaps from a local mirror of its HF layout: JSON metadata, single and split zips, the authors'
blacklist excluding clips that overlap Clotho's evaluation data."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest
from helpers.file_server import FileServer, write_clip

from salsa2.data.datasets import DATASETS, wavcaps, wavcaps_exclusions
from salsa2.utils.download import ChecksumError, DownloadError
from salsa2.utils.errors import UserError


def publish(tmp_path):
    hf = tmp_path / "hf"
    sb = [{"title": "Airplane Landing", "description": "x", "author": "a", "href": "2219-a.html",
           "caption": "An airplane is landing.", "id": "2219", "duration": 1.0},
          {"title": "Bell", "description": "y", "author": "a", "href": "2218-b.html",
           "caption": "Someone is ringing a bell.", "id": "2218", "duration": 1.0}]
    fsd = [{"id": str(i), "caption": f"Freesound clip {i}.", "duration": 1.0, "file_name": f"{i}.wav",
            "download_link": "", "href": "", "tags": []} for i in (117790, 204046, 5, 6)]
    for source, meta, items in (("SoundBible", "sb_final.json", sb), ("FreeSound", "fsd_final.json", fsd)):
        (hf / "json_files" / source).mkdir(parents=True)
        (hf / "json_files" / source / meta).write_text(json.dumps({"num_captions_per_audio": 1, "data": items}))
    work = tmp_path / "work"
    for item in sb:
        write_clip(work / "mnt/SoundBible_flac" / f"{item['id']}.flac", seed=int(item["id"]), fmt="FLAC")
    for i, item in enumerate(fsd):
        write_clip(work / "FreeSound_flac" / f"{item['id']}.flac", seconds=1.0, sr=16000, seed=i, fmt="FLAC")
    (hf / "Zip_files" / "SoundBible").mkdir(parents=True)
    with zipfile.ZipFile(hf / "Zip_files/SoundBible/SoundBible.zip", "w") as zf:
        for f in sorted((work / "mnt/SoundBible_flac").iterdir()):
            zf.write(f, f"mnt/SoundBible_flac/{f.name}")
    (hf / "Zip_files" / "FreeSound").mkdir(parents=True)
    subprocess.run(["zip", "-q", "-s", "64k", "-r", str(hf / "Zip_files/FreeSound/FreeSound.zip"), "FreeSound_flac"],
                   cwd=work, check=True)
    gh = tmp_path / "github"
    gh.mkdir()
    (gh / "blacklist_exclude_test_ac.json").write_text(json.dumps({"AudioSet": ["Yabc.wav"], "FreeSound": ["117790"]}))
    return hf, gh


@pytest.mark.skipif(shutil.which("zip") is None, reason="Info-ZIP zip builds the split-zip fixture")
def test_wavcaps_sources_split_zip_and_blacklist(tmp_path):
    hf, _ = publish(tmp_path)
    assert (hf / "Zip_files/FreeSound/FreeSound.z01").exists()  # the fixture really is split
    with FileServer(tmp_path) as srv:
        prepared = DATASETS.build("wavcaps", root=str(tmp_path / "wc"), sources=["SoundBible", "FreeSound"],
                                  base_url=f"{srv.url}/hf", blacklist_url=f"{srv.url}/github")
        requested = [p for p, _ in srv.requests]
    assert "/hf/Zip_files/FreeSound/FreeSound.z02" in requested  # parts fetched until the first 404
    audio = prepared.audio.set_index("audio_id")
    assert sorted(audio.index) == ["wavcaps/FreeSound/204046", "wavcaps/FreeSound/5", "wavcaps/FreeSound/6",
                                   "wavcaps/SoundBible/2218", "wavcaps/SoundBible/2219"]
    assert set(audio["split"]) == {"train"}
    assert audio.loc["wavcaps/SoundBible/2219", "path"] == str(tmp_path / "wc/audio/SoundBible/2219.flac")
    assert sorted(p.name for p in (tmp_path / "wc/audio/SoundBible").iterdir()) == ["2218.flac", "2219.flac"]
    caps = prepared.captions.set_index("caption_id")["text"]
    assert caps["wavcaps/SoundBible/2219#0"] == "An airplane is landing."
    assert prepared.rejects[["audio_id", "reason"]].values.tolist() == [["wavcaps/FreeSound/117790", "excluded"]]
    assert not (tmp_path / "wc" / "archives").exists()  # archives removed once extracted


def test_wavcaps_audio_dir_and_no_exclusion(tmp_path):
    meta = tmp_path / "wc" / "json_files" / "AudioSet_SL"
    meta.mkdir(parents=True)
    (meta / "as_final.json").write_text(json.dumps([{"id": "Yr1nicOVtvkQ.wav", "caption": "Water pours.",
                                                     "duration": 10.0}]))  # the GitHub copy: a bare list
    write_clip(tmp_path / "mine" / "AudioSet_SL" / "Yr1nicOVtvkQ.flac", fmt="FLAC")
    prepared = DATASETS.build("wavcaps", root=str(tmp_path / "wc"), sources=["AudioSet_SL"], exclude="none",
                              audio_dir=str(tmp_path / "mine"), download=False)
    assert prepared.audio["audio_id"].tolist() == ["wavcaps/AudioSet_SL/Yr1nicOVtvkQ"]
    assert prepared.rejects.empty


def test_wavcaps_rejects_unknown_source(tmp_path):
    with pytest.raises(ValueError, match="unknown source 'Freesound'"):
        wavcaps.prepare_wavcaps(root=str(tmp_path), sources=["Freesound"], exclude="none", download=False)


needs_zip = pytest.mark.skipif(shutil.which("zip") is None, reason="Info-ZIP zip makes and joins split zips")


@needs_zip
def test_split_zip_without_zip_fails_before_downloading_parts(tmp_path, monkeypatch):
    hf, gh = publish(tmp_path)
    monkeypatch.setattr(wavcaps.shutil, "which", lambda name: None if name == "zip" else shutil.which(name))
    with FileServer(tmp_path) as srv, pytest.raises(UserError, match="apt-get install zip"):
        DATASETS.build("wavcaps", root=str(tmp_path / "wc"), sources=["FreeSound"],
                       base_url=f"{srv.url}/hf", blacklist_url=f"{srv.url}/github")
    assert not any(path.startswith("/hf/Zip_files/FreeSound/") for path, _ in srv.requests)


@needs_zip
def test_split_zip_parts_removed_once_joined(tmp_path, monkeypatch):
    """Peak disk: the parts are deleted after the join, before the joined archive is extracted."""
    publish(tmp_path)
    seen = []
    real = wavcaps.extract_to

    def spy(archive, target, **kwargs):
        seen.append(sorted(p.name for p in Path(archive).parent.iterdir() if not p.name.startswith(".")))
        return real(archive, target, **kwargs)

    monkeypatch.setattr(wavcaps, "extract_to", spy)
    with FileServer(tmp_path) as srv:
        prepared = DATASETS.build("wavcaps", root=str(tmp_path / "wc"), sources=["FreeSound"],
                                  base_url=f"{srv.url}/hf", blacklist_url=f"{srv.url}/github")
    assert seen == [["FreeSound_merged.zip"]]
    assert len(prepared.audio) == 3 and not (tmp_path / "wc/archives").exists()


def test_pinned_download_refuses_other_bytes(tmp_path):
    """With ``pinned`` a file listed in the publisher's checksum table must have that sha256, mirror or not."""
    hf = tmp_path / "hf"
    (hf / "json_files/SoundBible").mkdir(parents=True)
    (hf / "json_files/SoundBible/sb_final.json").write_text(json.dumps({"data": []}))
    (hf / "Zip_files/SoundBible").mkdir(parents=True)
    with zipfile.ZipFile(hf / "Zip_files/SoundBible/SoundBible.zip", "w") as zf:
        zf.writestr("SoundBible_flac/1.flac", b"not the published archive")
    pins = {"Zip_files/SoundBible/SoundBible.zip": ("0" * 64, None)}
    with FileServer(tmp_path) as srv, pytest.raises(ChecksumError, match="SoundBible.zip"):
        wavcaps.prepare_wavcaps(root=str(tmp_path / "wc"), sources=["SoundBible"], exclude="none",
                                base_url=f"{srv.url}/hf", pinned=True, pins=pins)
    assert not (tmp_path / "wc/audio/SoundBible").exists()


def test_published_checksums_are_well_formed():
    assert len(wavcaps.PINS) >= 10
    for rel, (digest, size) in wavcaps.PINS.items():
        assert re.fullmatch(r"[0-9a-f]{64}", digest), rel
        assert size is None or size > 0
    for published in wavcaps_exclusions.LISTS.values():
        assert re.fullmatch(r"[0-9a-f]{64}", published.sha256) and published.size > 0
    assert wavcaps_exclusions.LISTS["dcase2025"].size == 20640


def _exclusion_fixture(tmp_path):
    hf = tmp_path / "hf"
    fsd = [{"id": str(i), "caption": f"Freesound clip {i}.", "duration": 1.0} for i in (5, 6, 7, 117790)]
    (hf / "json_files/FreeSound").mkdir(parents=True)
    (hf / "json_files/FreeSound/fsd_final.json").write_text(json.dumps({"data": fsd}))
    for item in fsd:
        write_clip(tmp_path / "mine/FreeSound" / f"{item['id']}.flac", fmt="FLAC")
    lists = tmp_path / "lists"
    lists.mkdir()
    (lists / wavcaps_exclusions.DCASE2025_FILE).write_text("sound_id\n6\n7\n")  # the DCASE 2025 file's format
    (lists / "blacklist_exclude_test_ac.json").write_text(json.dumps({"AudioSet": [], "FreeSound": ["117790"]}))
    return lists


def test_dcase2025_exclusion_list(tmp_path):
    _exclusion_fixture(tmp_path)
    with FileServer(tmp_path) as srv:
        common = dict(root=str(tmp_path / "wc"), sources=["FreeSound"], audio_dir=str(tmp_path / "mine"),
                      base_url=f"{srv.url}/hf", blacklist_url=f"{srv.url}/lists",
                      dcase2025_url=f"{srv.url}/lists/{wavcaps_exclusions.DCASE2025_FILE}")
        alone = wavcaps.prepare_wavcaps(exclude="dcase2025", **common)
        both = wavcaps.prepare_wavcaps(exclude=["test", "dcase2025"], **common)
        as_url = wavcaps.prepare_wavcaps(exclude=f"{srv.url}/lists/{wavcaps_exclusions.DCASE2025_FILE}", **common)
    assert sorted(alone.rejects["audio_id"]) == ["wavcaps/FreeSound/6", "wavcaps/FreeSound/7"]
    assert set(alone.rejects["reason"]) == {"excluded"}
    assert sorted(both.audio["audio_id"]) == ["wavcaps/FreeSound/5"]
    assert sorted(as_url.rejects["audio_id"]) == ["wavcaps/FreeSound/6", "wavcaps/FreeSound/7"]


def test_dcase2025_list_is_pinned(tmp_path):
    lists = _exclusion_fixture(tmp_path)
    with FileServer(tmp_path) as srv, pytest.raises(DownloadError, match=f"{wavcaps_exclusions.DCASE2025_FILE}.*20640"):
        wavcaps.prepare_wavcaps(root=str(tmp_path / "wc"), sources=["FreeSound"], audio_dir=str(tmp_path / "mine"),
                                base_url=f"{srv.url}/hf", exclude="dcase2025", pinned=True,
                                dcase2025_url=f"{srv.url}/lists/{wavcaps_exclusions.DCASE2025_FILE}")
    assert lists.is_dir()


def test_unknown_exclusion_names_the_choices(tmp_path):
    with pytest.raises(ValueError, match="dcase2025"):
        wavcaps.prepare_wavcaps(root=str(tmp_path), sources=["FreeSound"], exclude="dcase2024", download=False)


@needs_zip
def test_a_joined_split_zip_survives_a_failed_extraction(tmp_path, monkeypatch):
    """A run that fails after the join (disk full while extracting) leaves the joined zip; the next run of the same
    params extracts it without fetching the parts again."""
    publish(tmp_path)
    real = wavcaps.extract_to

    def full_disk(archive, target, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(wavcaps, "extract_to", full_disk)
    kwargs = dict(root=str(tmp_path / "wc"), sources=["FreeSound"], exclude="none")
    with FileServer(tmp_path) as srv, pytest.raises(OSError, match="No space"):
        DATASETS.build("wavcaps", base_url=f"{srv.url}/hf", **kwargs)
    monkeypatch.setattr(wavcaps, "extract_to", real)
    with FileServer(tmp_path) as srv:
        prepared = DATASETS.build("wavcaps", base_url=f"{srv.url}/hf", **kwargs)
        requested = [path for path, _ in srv.requests]
    assert not any(path.startswith("/hf/Zip_files/") for path in requested)
    assert len(prepared.audio) == 4
