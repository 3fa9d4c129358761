"""AudioCaps (Kim et al., NAACL 2019): caption CSVs as published in github.com/cdjkim/audiocaps.

CSV columns ``audiocap_id, youtube_id, start_time, caption``; train has one caption per clip, val and test
five (rows of the same youtube_id/start_time are one clip). The audio is not redistributed by its authors:
clips are found (a) in ``audio_dir``, a folder the user already has (searched recursively), by file stem
``{youtube_id}_{start_time}`` (the aac-datasets naming) or ``Y{youtube_id}`` / ``{youtube_id}`` (AudioSet
naming), any of wav/flac/ogg/mp3; or (b) downloaded one by one from ``mirror``, a URL template with
``{split}``, ``{youtube_id}``, ``{start_time}`` fields. Clips found nowhere are reported in the rejects
(reason ``missing``), never a failure: 5-10 % of the YouTube videos are gone from every copy, so a dataset entry
reading AudioCaps sets its own ``max_reject_share`` (presets/paper-audiocaps.yaml). ``copy_audio``: clips found in
``audio_dir`` are linked (or copied) into ``root/audio/<split>/`` as well, so that stage download@ packs them and
every entry reading that download (``raw:``) finds them without ``audio_dir``.
"""

from __future__ import annotations

import csv
import logging
import os
import shutil
from pathlib import Path

from tqdm import tqdm

from salsa2.data.datasets import DATASETS
from salsa2.data.datasets.base import Clip, Prepared, prepare_clips, reject
from salsa2.utils.download import DownloadError, Remote, fetch

log = logging.getLogger(__name__)

# pinned to the commit whose CSVs the checksums below were computed from (github.com/cdjkim/audiocaps d004db3)
GITHUB = "https://raw.githubusercontent.com/cdjkim/audiocaps/d004db3ea1b01cf4fd0347dd8d27db90cadc8809"
VERSION_DIRS = {"v1": "dataset", "v2": "dataset2.0"}
# (sha256, bytes) of the caption CSVs at that commit; v2 train.csv is not known here: recorded on first download
CSV_CHECKSUMS = {
    ("v1", "train"): ("c0c5223db682b3bf724ce7e7ce58d5b36929f74572e8526a7211f92d2eef7c8e", 3576723),
    ("v1", "val"): ("dab1c96641d5f3053ddb99dca3949450da9a75737bda53e11cc0aa8b102be0c3", 171918),
    ("v1", "test"): ("b91c4b7ded2f4f6e7db5b9c4983dc1e1dca3d556f505b61e3fd65cac7e1c638a", 402246),
    ("v2", "val"): ("dfdd0f83c70fb818fbb86dcba42754abfb97f7774d811fff91a1c89d84d868c5", 169508),
    ("v2", "test"): ("365c8a8a71c9070a8d5dba5dd44f3a781f906632a49cb82b38bebaaa8f3c5ccb", 397498),
}
SPLITS = {"train": "train", "val": "val", "test": "test"}  # csv name -> our split
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3")
COLUMNS = ("audiocap_id", "youtube_id", "start_time", "caption")


def read_csv(path: Path) -> dict[tuple[str, int], list[str]]:
    """(youtube_id, start_time) -> captions, in file order."""
    clips: dict[tuple[str, int], list[str]] = {}
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path}: missing column(s) {missing}; expected {list(COLUMNS)}")
        for i, row in enumerate(reader):
            try:
                start = int(float(row["start_time"]))
            except ValueError:
                raise ValueError(
                    f"{path}: row {i + 2} has start_time {row['start_time']!r}; expected seconds"
                ) from None
            clips.setdefault((row["youtube_id"], start), []).append(row["caption"])
    return clips


def index_audio(audio_dir: Path) -> dict[str, Path]:
    """File stem -> path of every audio file under ``audio_dir``."""
    return {p.stem: p for p in audio_dir.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS}


def link_or_copy(src: Path, dest: Path) -> Path:
    """``dest`` as a hard link of ``src`` (a copy across file systems); kept when it exists."""
    if not dest.exists():
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(dest.name + ".tmp")
        tmp.unlink(missing_ok=True)
        try:
            os.link(src, tmp)
        except OSError:
            shutil.copyfile(src, tmp)
        tmp.replace(dest)
    return dest


def find_clip(index: dict[str, Path], youtube_id: str, start: int) -> Path | None:
    for stem in (f"{youtube_id}_{start}", f"{youtube_id}_{start}.000", f"Y{youtube_id}", youtube_id):
        if stem in index:
            return index[stem]
    return None


@DATASETS.register("audiocaps")
def prepare_audiocaps(
    root: str = "data/raw/audiocaps",
    audio_dir: str | None = None,
    mirror: str | None = None,
    splits: tuple[str, ...] | list[str] = ("train", "val", "test"),
    version: str = "v1",
    download: bool = True,
    base_url: str | None = None,
    name: str = "audiocaps",
    copy_audio: bool = False,
) -> Prepared:
    """Args: root: where caption CSVs (``csv/``) and mirrored clips (``audio/<split>/``) go; audio_dir: your
    own copy of the clips; mirror: URL template for clips, e.g. ``https://host/ac/{split}/{youtube_id}_{start_time}.flac``;
    version: v1 (the benchmark of Primus et al. 2024) or v2; base_url: where the caption CSVs are (default: GitHub);
    copy_audio: link the clips found in ``audio_dir`` into ``root/audio/<split>/`` (a download@ entry)."""
    if version not in VERSION_DIRS:
        raise ValueError(f"audiocaps: unknown version {version!r}; use one of {list(VERSION_DIRS)}")
    root_path = Path(root)
    base = base_url or f"{GITHUB}/{VERSION_DIRS[version]}"
    index = index_audio(Path(audio_dir)) if audio_dir else {}
    index.update(index_audio(root_path / "audio") if (root_path / "audio").is_dir() else {})
    clips: list[Clip] = []
    rejects: list[dict] = []
    for csv_name in splits:
        if csv_name not in SPLITS:
            raise ValueError(f"audiocaps: unknown split {csv_name!r}; use some of {list(SPLITS)}")
        csv_path = root_path / "csv" / f"{csv_name}.csv"
        if download:
            sha256, size = CSV_CHECKSUMS.get((version, csv_name), (None, None)) if base_url is None else (None, None)
            fetch(Remote(csv_path.name, f"{base.rstrip('/')}/{csv_path.name}", sha256=sha256, size=size),
                  csv_path.parent)
        if not csv_path.exists():
            raise FileNotFoundError(f"{csv_path}: AudioCaps caption CSV missing; run with download: true")
        for (ytid, start), captions in tqdm(read_csv(csv_path).items(), desc=f"audiocaps {csv_name}", unit="clip"):
            audio_id = f"{name}/{ytid}_{start}"
            path = find_clip(index, ytid, start)
            if path is not None and copy_audio and root_path / "audio" not in path.parents:
                path = link_or_copy(path, root_path / "audio" / csv_name / f"{ytid}_{start}{path.suffix.lower()}")
            if path is None and mirror:
                ext = Path(mirror.split("?")[0]).suffix or ".flac"
                url = mirror.format(split=csv_name, youtube_id=ytid, start_time=start)
                try:
                    path = fetch(Remote(f"{ytid}_{start}{ext}", url), root_path / "audio" / csv_name, progress=False)
                except DownloadError as err:
                    rejects.append(reject(audio_id, url, "missing", str(err)))
                    continue
            if path is None:
                rejects.append(reject(audio_id, f"{ytid}_{start}", "missing",
                                      "not in audio_dir and no mirror given (AudioCaps audio is not redistributed)"))
                continue
            clips.append(Clip(audio_id, SPLITS[csv_name], path, captions))
    if rejects:
        log.warning("audiocaps: %d clips missing (listed in the rejects)", len(rejects))
    return prepare_clips(clips, name, f"audiocaps ({root_path})", rejects)
