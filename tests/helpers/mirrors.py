"""Tiny mirrors of the real datasets' published files, with their exact names and layouts, for the end-to-end
recipe tests: Clotho v2.1 (Zenodo: one 7z per subset, ``<subset>/<file>.wav`` inside, caption CSVs), the AudioCaps
caption CSVs (+ a user's clip folder), WavCaps (HF: ``json_files/<Source>/*_final.json``, ``Zip_files/<Source>``
single and split zips, the authors' blacklist) and the DCASE 2025 task 6 judgements (``metadata_eval.csv``)."""

from __future__ import annotations

import csv
import hashlib
import json
import subprocess
import zipfile
from pathlib import Path

import py7zr

from .file_server import write_clip

# Clotho subsets -> file names; evaluation names as published (HTML entities hold a ';', dots inside the stem)
CLOTHO = {
    "development": ["rain on a roof.wav", "dog, barking.wav", "kettle.wav", "footsteps.wav"],
    "validation": ["birds.wav", "wind.wav", "traffic.wav"],
    "evaluation": ["Pensol - le Moulin cours d&#39;eau.wav", "Rock &amp; Roll drums.wav",
                   "20091217.17.fountain.wav", "bell.wav"],
}


def clotho_caption(name: str, k: int) -> str:
    return f"The sound of {Path(name).stem.replace('&#39;', ' ').replace('&amp;', 'and')} number {k}."


def publish_clotho(pub: Path, work: Path) -> None:
    """Zenodo record files of Clotho v2.1 under ``pub``."""
    pub.mkdir(parents=True, exist_ok=True)
    for i, (subset, names) in enumerate(CLOTHO.items()):
        with py7zr.SevenZipFile(pub / f"clotho_audio_{subset}.7z", "w") as sz:
            for j, name in enumerate(names):
                sz.write(write_clip(work / subset / name, seconds=0.8, sr=8000, seed=10 * i + j), f"{subset}/{name}")
        with open(pub / f"clotho_captions_{subset}.csv", "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(["file_name", *[f"caption_{k}" for k in range(1, 6)]])
            w.writerows([name, *[clotho_caption(name, k) for k in range(1, 6)]] for name in names)


def publish_judgements(path: Path) -> str:
    """The DCASE 2025 task 6 ``metadata_eval.csv`` (query, Python list of Clotho evaluation names); its sha256."""
    ev = CLOTHO["evaluation"]
    rows = [(clotho_caption(ev[0], 1), [ev[0], ev[1]]), (clotho_caption(ev[2], 3), [ev[2], ev[0], ev[3]]),
            (clotho_caption(ev[3], 2), [ev[3]])]
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["query", "audio_filenames"])
        w.writerows((q, str(names)) for q, names in rows)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def publish_audiocaps(pub: Path, clips: Path, gone: int = 1) -> None:
    """``pub/{train,val,test}.csv`` as github.com/cdjkim/audiocaps publishes them and the user's clips under
    ``clips`` (``{youtube_id}_{start}.flac``); the last ``gone`` training videos have no clip (gone from YouTube)."""
    pub.mkdir(parents=True, exist_ok=True)
    rows = {"train": [(i, f"trn{i:02d}", 30, f"Audiocaps training sound {i}") for i in range(8)],
            "val": [(100 + k, "val01", 0, f"Wind blows hard {k}") for k in range(5)],
            "test": [(200 + k, f"tst{k // 5}", 10, f"Engine idles {k}") for k in range(10)]}
    for split, split_rows in rows.items():
        with open(pub / f"{split}.csv", "w", newline="") as f:
            csv.writer(f).writerows([("audiocap_id", "youtube_id", "start_time", "caption"), *split_rows])
    ids = sorted({(r[1], r[2]) for split_rows in rows.values() for r in split_rows})
    lost = {(f"trn{i:02d}", 30) for i in range(8 - gone, 8)}
    for n, (ytid, start) in enumerate(ids):
        if (ytid, start) not in lost:
            write_clip(clips / f"{ytid}_{start}.flac", seconds=0.8, sr=16000, seed=50 + n, fmt="FLAC")


def publish_wavcaps(hf: Path, github: Path, work: Path, n_freesound: int = 20) -> None:
    """The HF layout of WavCaps (SoundBible: one zip; FreeSound: a split zip made by Info-ZIP ``zip -s``) and the
    authors' blacklist (one FreeSound id excluded)."""
    sb = [{"title": f"Bell {i}", "description": "x", "author": "a", "href": f"{2200 + i}-b.html",
           "caption": f"Someone rings bell {i}.", "id": str(2200 + i), "duration": 1.0} for i in range(2)]
    fsd = [{"id": str(1000 + i), "caption": f"Freesound clip number {i}.", "duration": 1.0,
            "file_name": f"{1000 + i}.wav", "download_link": "", "href": "", "tags": []} for i in range(n_freesound)]
    for source, meta, items in (("SoundBible", "sb_final.json", sb), ("FreeSound", "fsd_final.json", fsd)):
        (hf / "json_files" / source).mkdir(parents=True)
        (hf / "json_files" / source / meta).write_text(json.dumps({"num_captions_per_audio": 1, "data": items}))
    for i, item in enumerate(sb):
        write_clip(work / "mnt/SoundBible_flac" / f"{item['id']}.flac", seconds=0.8, sr=16000, seed=80 + i,
                   fmt="FLAC")
    for i, item in enumerate(fsd):
        write_clip(work / "FreeSound_flac" / f"{item['id']}.flac", seconds=0.8, sr=16000, seed=100 + i, fmt="FLAC")
    (hf / "Zip_files/SoundBible").mkdir(parents=True)
    with zipfile.ZipFile(hf / "Zip_files/SoundBible/SoundBible.zip", "w") as zf:
        for f in sorted((work / "mnt/SoundBible_flac").iterdir()):
            zf.write(f, f"mnt/SoundBible_flac/{f.name}")
    (hf / "Zip_files/FreeSound").mkdir(parents=True)
    subprocess.run(["zip", "-q", "-s", "64k", "-r", str(hf / "Zip_files/FreeSound/FreeSound.zip"),
                    "FreeSound_flac"], cwd=work, check=True)
    github.mkdir(parents=True)
    (github / "blacklist_exclude_test_ac.json").write_text(json.dumps({"AudioSet": [], "FreeSound": ["1000"]}))
