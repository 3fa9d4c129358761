"""Clotho v2.1 (Drossos et al., ICASSP 2020) as published on Zenodo (record 4783391).

Per split a 7z of wav files (``development/``, ``validation/``, ``evaluation/`` inside) and a caption CSV
with columns ``file_name, caption_1 .. caption_5``; md5 sums as published. Splits: development -> train
(3839 clips), validation -> val (1045), evaluation -> test (1045), five captions each (Primus et al. 2024, sec. 4.1).

Layout under ``root``: ``archives/*.7z`` (removed after extraction unless ``keep_archives``),
``csv/*.csv``, ``audio/<development|validation|evaluation>/*.wav``.
"""

from __future__ import annotations

import csv
from pathlib import Path

from salsa2.data.archive import extract_to, list_members
from salsa2.data.datasets import DATASETS
from salsa2.data.datasets.base import Clip, Prepared, prepare_clips
from salsa2.utils.download import Remote, fetch

ZENODO = "https://zenodo.org/records/4783391/files"
CAPTION_COLUMNS = [f"caption_{i}" for i in range(1, 6)]

# subset -> (our split, audio dir inside the archive, {kind: (file name, md5)})
SUBSETS: dict[str, tuple[str, str, dict[str, tuple[str, str]]]] = {
    "development": ("train", "development", {
        "audio": ("clotho_audio_development.7z", "c8b05bc7acdb13895bb3c6a29608667e"),
        "captions": ("clotho_captions_development.csv", "d4090b39ce9f2491908eebf4d5b09bae"),
    }),
    "validation": ("val", "validation", {
        "audio": ("clotho_audio_validation.7z", "7dba730be08bada48bd15dc4e668df59"),
        "captions": ("clotho_captions_validation.csv", "5879e023032b22a2c930aaa0528bead4"),
    }),
    "evaluation": ("test", "evaluation", {
        "audio": ("clotho_audio_evaluation.7z", "4569624ccadf96223f19cb59fe4f849f"),
        "captions": ("clotho_captions_evaluation.csv", "1b16b9e57cf7bdb7f13a13802aeb57e2"),
    }),
}


def remote(fname: str, md5: str | None, base_url: str) -> Remote:
    return Remote(fname, f"{base_url.rstrip('/')}/{fname}?download=1", md5=md5)


def read_captions(path: Path) -> list[tuple[str, list[str]]]:
    """(file_name, [caption_1..5]) rows of a Clotho caption CSV."""
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = [c for c in ["file_name", *CAPTION_COLUMNS] if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path}: missing column(s) {missing}; is this a Clotho caption CSV?")
        return [(row["file_name"], [row[c] for c in CAPTION_COLUMNS]) for row in reader]


@DATASETS.register("clotho")
def prepare_clotho(
    root: str = "data/raw/clotho",
    subsets: tuple[str, ...] | list[str] = ("development", "validation", "evaluation"),
    download: bool = True,
    base_url: str = ZENODO,
    verify: bool = True,
    keep_archives: bool = False,
    name: str = "clotho",
) -> Prepared:
    """Download (if needed), extract and tabulate Clotho v2.1.

    Args: root: where the dataset lives; subsets: which of development/validation/evaluation; download:
    fetch what is missing (False: use what is in ``root``); base_url: the Zenodo record (or a mirror with the
    same file names); verify: check the published md5 sums.
    """
    root_path = Path(root)
    clips: list[Clip] = []
    for subset in subsets:
        if subset not in SUBSETS:
            raise ValueError(f"clotho: unknown subset {subset!r}; use some of {list(SUBSETS)}")
        split, audio_dir, files = SUBSETS[subset]
        cap_name, cap_md5 = files["captions"]
        cap_path = root_path / "csv" / cap_name
        audio_path = root_path / "audio" / audio_dir
        if download:
            fetch(remote(cap_name, cap_md5 if verify else None, base_url), root_path / "csv")
            if not audio_path.is_dir():
                arc_name, arc_md5 = files["audio"]
                archive = fetch(remote(arc_name, arc_md5 if verify else None, base_url), root_path / "archives",
                                check=list_members)
                extract_to(archive, audio_path, inner=audio_dir, keep=lambda m: m.lower().endswith(".wav"))
                if not keep_archives:
                    archive.unlink()
        if not cap_path.exists():
            raise FileNotFoundError(f"{cap_path}: Clotho caption file missing; run with download: true")
        clips += [Clip(f"{name}/{subset}/{Path(f).stem}", split, audio_path / f, caps)
                  for f, caps in read_captions(cap_path)]
    return prepare_clips(clips, name, f"clotho ({root_path})")
