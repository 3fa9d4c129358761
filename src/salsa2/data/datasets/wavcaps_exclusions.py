"""Lists of WavCaps clips that overlap the evaluation data, by name (``exclude:`` of the ``wavcaps`` dataset).

- ``test``: the WavCaps authors' ``blacklist_exclude_test_ac.json`` (github.com/XinhaoMei/WavCaps,
  ``data/json_files/blacklist/``): FreeSound ids of Clotho's validation and evaluation clips (2090 entries, 2078
  unique) and the AudioSet files of AudioCaps' validation and test clips (494 + 957 = 1451); used by Primus
  et al. 2024, sec. 4.1.
- ``all``: ``blacklist_exclude_all_ac.json``, every Clotho and AudioCaps clip (5929 FreeSound entries, 50725 AudioSet).
- ``dcase2025``: the DCASE 2025 task 6 list ``resources/dcase2025_task6_excluded_freesound_ids.csv`` of
  github.com/CPJKU/dcase2025_task6_baseline (one column ``sound_id``; 3080 FreeSound ids, 2039 of them not in
  ``test``). That repository carries no licence, so the list is downloaded at run time, never copied here.

Each is fetched from a pinned commit and checked against the sha256 and size recorded below (counted with the
command in docs/datasets.md). A path or URL of a file in either format (JSON ``{"FreeSound": [...],
"AudioSet": [...]}`` or a CSV with a ``sound_id`` column) is a list too; several lists are joined.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

from salsa2.utils.download import Remote, fetch

WAVCAPS_COMMIT = "a5a9649ce305d7fe82cfcf5d6a4a12f03df9ef1e"
BLACKLISTS = f"https://raw.githubusercontent.com/XinhaoMei/WavCaps/{WAVCAPS_COMMIT}/data/json_files/blacklist"
DCASE2025_COMMIT = "c78422fcbed579877919620a30075baccf82bf2b"
DCASE2025_DIR = "resources"
DCASE2025_FILE = "dcase2025_task6_excluded_freesound_ids.csv"
DCASE2025_URL = (f"https://raw.githubusercontent.com/CPJKU/dcase2025_task6_baseline/{DCASE2025_COMMIT}/"
                 f"{DCASE2025_DIR}/{DCASE2025_FILE}")


@dataclass(frozen=True)
class Published:
    """One exclusion list as published: file name, sha256 and size at the pinned commit."""

    fname: str
    sha256: str
    size: int


LISTS = {
    "test": Published("blacklist_exclude_test_ac.json",
                      "54a84d4e24f5c7eda582ce75d0e34eae51a22df9f1a946db9e43501a6fb386a8", 77724),
    "all": Published("blacklist_exclude_all_ac.json",
                     "ab53786c5d0a0fe174013395cae46dfcec8676ba71c8539605691290b63b4803", 1525390),
    "dcase2025": Published(DCASE2025_FILE, "243671ebaebad871615e6903d3e23643ea75f121aa873d7e0172a477d04caf20", 20640),
}


def read_exclusions(path: str | Path) -> dict[str, set[str]]:
    """A list file -> {WavCaps blacklist key (``FreeSound``, ``AudioSet``): ids}."""
    path = Path(path)
    if path.suffix.lower() == ".csv":
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            if "sound_id" not in (reader.fieldnames or []):
                raise ValueError(f"{path}: no `sound_id` column; an exclusion CSV lists FreeSound ids under "
                                 "`sound_id` (the DCASE 2025 format)")
            return {"FreeSound": {row["sound_id"].strip() for row in reader if row["sound_id"].strip()}}
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    if not isinstance(data, dict) or not all(isinstance(ids, list) for ids in data.values()):
        raise ValueError(f"{path}: expected a JSON object of id lists, such as {{\"FreeSound\": [...], "
                         "\"AudioSet\": [...]}} (the WavCaps blacklist format)")
    return {key: set(map(str, ids)) for key, ids in data.items()}


def list_file(name: str, folder: Path, download: bool, urls: dict[str, str], pinned: bool | None) -> Path:
    """The file of list ``name`` (a name of ``LISTS``, a URL or a path) under ``folder``, fetched if asked.

    ``urls``: name -> URL where the named lists are fetched from. ``pinned``: check the published sha256 and
    size (None: only when fetched from the published address)."""
    if name in LISTS:
        published = LISTS[name]
        url = urls[name]
        path = folder / published.fname
        if download:
            check = pinned if pinned is not None else url == published_url(name)
            fetch(Remote(published.fname, url, sha256=published.sha256 if check else None,
                         size=published.size if check else None), folder)
        if not path.exists():
            raise FileNotFoundError(f"{path}: WavCaps exclusion list {name!r} missing; run with download: true or "
                                    "set exclude: none")
        return path
    if name.startswith(("http://", "https://")):
        fname = Path(name.split("?")[0]).name
        return fetch(Remote(fname, name), folder) if download else folder / fname
    if Path(name).is_file():
        return Path(name)
    raise ValueError(f"wavcaps exclude: {name!r} is none of {', '.join([*LISTS, 'none'])} and no existing file "
                     "or URL of a list")


def published_url(name: str) -> str:
    return DCASE2025_URL if name == "dcase2025" else f"{BLACKLISTS}/{LISTS[name].fname}"


def load_exclusions(exclude: str | list[str] | tuple[str, ...], folder: str | Path, download: bool = True,
                    urls: dict[str, str] | None = None, pinned: bool | None = None) -> dict[str, set[str]]:
    """The union of the lists ``exclude`` names (``none`` or [] for none): {key: ids}."""
    names = [exclude] if isinstance(exclude, str) else list(exclude)
    urls = {name: published_url(name) for name in LISTS} | (urls or {})
    joined: dict[str, set[str]] = {}
    for name in names:
        if name == "none":
            continue
        for key, ids in read_exclusions(list_file(name, Path(folder), download, urls, pinned)).items():
            joined.setdefault(key, set()).update(ids)
    return joined
