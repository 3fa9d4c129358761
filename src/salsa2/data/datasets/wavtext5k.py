"""WavText5K (Deshmukh et al. 2023): BigSoundBank and SoundBible clips with their web metadata.

``WavText5K.csv`` (github.com/microsoft/WavText5K) has columns ``view_link, download_link, title,
description, fname, tags``; each clip is downloaded from its ``download_link`` to ``audio/<fname>``
(a clip whose link fails is reported in the rejects as ``missing``). The caption is
``"{title}. {description}"`` as in Deshmukh et al. 2023 (the title alone when there is no description; a title that
already ends in ., ! or ? gets no second full stop). Every clip is ``train``.
"""

from __future__ import annotations

import csv
from pathlib import Path

from tqdm import tqdm

from salsa2.data.datasets import DATASETS
from salsa2.data.datasets.base import Clip, Prepared, prepare_clips, reject
from salsa2.utils.download import DownloadError, Remote, fetch
from salsa2.data.text_norm import clean_caption

# pinned to github.com/microsoft/WavText5K 7f1243b, whose CSV has this sha256 and size; the clips (hosted by
# their sound sites) publish no checksum: each one's sha256 and size are recorded on first download
CSV_URL = "https://raw.githubusercontent.com/microsoft/WavText5K/7f1243befcba524009655747f5088b1573b7db95/WavText5K.csv"
CSV_SHA256, CSV_SIZE = "a1ebe32c6e97aeb27a99bf5fb79a155c3f4a1924f56a9d0e9e37706e4f553b5d", 1491242
COLUMNS = ("download_link", "title", "description", "fname")


def title_description(title: str, description: str) -> str:
    """The caption of Deshmukh et al. 2023: ``"{title}. {description}"``."""
    title, description = clean_caption(title), clean_caption(description)
    if not description or description == title:
        return title
    if not title:
        return description
    return f"{title}{'' if title[-1] in '.!?' else '.'} {description}"


@DATASETS.register("wavtext5k")
def prepare_wavtext5k(
    root: str = "data/raw/wavtext5k",
    audio_dir: str | None = None,
    download: bool = True,
    csv_url: str = CSV_URL,
    name: str = "wavtext5k",
) -> Prepared:
    """Args: root: where the CSV and audio go; audio_dir: a folder with the clips (by ``fname``) you already
    have; csv_url: the metadata CSV (or a mirror)."""
    root_path = Path(root)
    csv_path = root_path / "WavText5K.csv"
    if download:
        pinned = csv_url == CSV_URL
        fetch(Remote(csv_path.name, csv_url, sha256=CSV_SHA256 if pinned else None, size=CSV_SIZE if pinned else None),
              root_path)
    if not csv_path.exists():
        raise FileNotFoundError(f"{csv_path}: WavText5K metadata missing; run with download: true")
    with open(csv_path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{csv_path}: missing column(s) {missing}; expected {list(COLUMNS)}")
        rows = list(reader)
    audio = Path(audio_dir) if audio_dir else root_path / "audio"
    clips: list[Clip] = []
    rejects: list[dict] = []
    seen: set[str] = set()
    for row in tqdm(rows, desc="wavtext5k", unit="clip"):
        fname = row["fname"]
        audio_id = f"{name}/{Path(fname).stem}"
        if audio_id in seen:
            rejects.append(reject(audio_id, fname, "duplicate", f"{fname} is listed twice in {csv_path}"))
            continue
        seen.add(audio_id)
        path = audio / fname
        if download and not audio_dir and not path.exists():
            try:
                fetch(Remote(fname, row["download_link"]), audio, progress=False)
            except DownloadError as err:
                rejects.append(reject(audio_id, row["download_link"], "missing", str(err)))
                continue
        clips.append(Clip(audio_id, "train", path, [title_description(row["title"], row["description"])]))
    return prepare_clips(clips, name, f"wavtext5k ({csv_path})", rejects)
