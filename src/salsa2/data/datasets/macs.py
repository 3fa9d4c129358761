"""MACS (Martin-Morato & Mesaros, DCASE 2021): captions of TAU Urban Acoustic Scenes 2019 clips.

``MACS.yaml`` (Zenodo record 5114771) holds ``files: [{filename, annotations: [{annotator_id, sentence,
tags}]}]``; the audio is in the TAU Urban Acoustic Scenes 2019 development zips (Zenodo record 2589280,
members ``TAU-urban-acoustic-scenes-2019-development/audio/<filename>``); only the eight zips that contain
MACS clips are fetched and only MACS clips are extracted. md5 sums as published. Every clip is ``train``
(MACS has no official split); the ``sentence`` of each annotation is one caption.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from salsa2.data.archive import extract_to, list_members
from salsa2.data.datasets import DATASETS
from salsa2.data.datasets.base import Clip, Prepared, prepare_clips
from salsa2.utils.download import Remote, fetch

MACS_URL = "https://zenodo.org/records/5114771/files"
TAU_URL = "https://zenodo.org/records/2589280/files"
CAPTIONS = ("MACS.yaml", "23fcb2ebd0b109094034ef9e87972256")
TAU_PREFIX = "TAU-urban-acoustic-scenes-2019-development"
TAU_ZIPS = {  # part -> md5; the parts that hold MACS clips
    1: "aca4ebfd9ed03d5f747d6ba8c24bc728", 2: "c4f170408ce77c8c70c532bf268d7be0",
    3: "c7214a07211f10f3250290d05e72c37e", 9: "3c32a693a6b111ffb957be3c1dd22e9b",
    10: "0ffbf60006da520cc761fb74c878b98b", 11: "599055d93b4c11057c29be2df54538d4",
    12: "98b8d162ff3665695c4c910e6c372cc8", 13: "a356c08b1a5a21d433eba37ef87587f4",
}


def read_macs(path: Path) -> list[tuple[str, list[str]]]:
    with open(path, encoding="utf-8") as f:
        data = yaml.safe_load(f)
    if not isinstance(data, dict) or "files" not in data:
        raise ValueError(f"{path}: expected a mapping with 'files'; is this MACS.yaml?")
    return [(item["filename"], [a["sentence"] for a in item.get("annotations") or []]) for item in data["files"]]


@DATASETS.register("macs")
def prepare_macs(
    root: str = "data/raw/macs",
    audio_dir: str | None = None,
    download: bool = True,
    base_url: str = MACS_URL,
    tau_url: str = TAU_URL,
    verify: bool = True,
    keep_archives: bool = False,
    name: str = "macs",
) -> Prepared:
    """Args: root: where MACS.yaml, archives and audio go; audio_dir: a folder with the TAU wav files you
    already have; base_url / tau_url: the Zenodo records (or mirrors with the same file names)."""
    root_path = Path(root)
    cap_path = root_path / CAPTIONS[0]
    if download:
        fetch(Remote(CAPTIONS[0], f"{base_url.rstrip('/')}/{CAPTIONS[0]}?download=1",
                     md5=CAPTIONS[1] if verify else None), root_path)
    if not cap_path.exists():
        raise FileNotFoundError(f"{cap_path}: MACS caption file missing; run with download: true")
    entries = read_macs(cap_path)
    audio = Path(audio_dir) if audio_dir else root_path / "audio"
    if download and not audio_dir and not audio.is_dir():
        wanted = {fname for fname, _ in entries}
        parts = []
        for part, md5 in TAU_ZIPS.items():
            fname = f"{TAU_PREFIX}.audio.{part}.zip"
            archive = fetch(Remote(fname, f"{tau_url.rstrip('/')}/{fname}?download=1", md5=md5 if verify else None),
                            root_path / "archives", check=list_members)
            parts.append(extract_to(archive, root_path / f".audio.{part}", keep=lambda m: Path(m).name in wanted))
            if not keep_archives:
                archive.unlink()
        staging = root_path / ".audio.merge"
        staging.mkdir(exist_ok=True)
        for part_dir in parts:
            for wav in part_dir.rglob("*.wav"):
                wav.rename(staging / wav.name)
            for d in sorted(part_dir.rglob("*"), reverse=True):
                d.rmdir()
            part_dir.rmdir()
        staging.rename(audio)
    clips = [Clip(f"{name}/{Path(f).stem}", "train", audio / f, caps) for f, caps in entries]
    return prepare_clips(clips, name, f"macs ({cap_path})")
