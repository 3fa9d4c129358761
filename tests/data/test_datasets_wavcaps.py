"""WavCaps from a local mirror of its HF layout: JSON metadata, single and split zips, the authors'
blacklist excluding clips that overlap Clotho's evaluation data."""

from __future__ import annotations

import json
import shutil
import subprocess
import zipfile

import pytest
from helpers.file_server import FileServer, write_clip

from salsa2.data.datasets import DATASETS, wavcaps


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
