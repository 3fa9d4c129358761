"""WavCaps (Mei et al., 2023) as published on the HuggingFace hub (cvssp/WavCaps): four sources.

``json_files/<Source>/<x>_final.json`` holds ``{"data": [{"id", "caption", "duration", ...}]}`` (the
GitHub copy is the bare list; both are read); ``Zip_files/<Source>/<Source>.zip`` holds the flac files
(AudioSet_SL ids are ``Y<ytid>.wav`` -> ``Y<ytid>.flac``, the others ``<id>`` -> ``<id>.flac``). The three
large sources are split zips (``.z01`` ...): they are downloaded part by part and joined with ``zip -s 0``
(Info-ZIP) before extraction, or you point ``audio_dir`` at an extracted copy (``<audio_dir>/<Source>/``).

Clips that overlap the evaluation data are excluded with the authors' blacklists
(``data/json_files/blacklist/*.json`` in github.com/XinhaoMei/WavCaps: keys ``FreeSound`` and ``AudioSet``):
``exclude: test`` (default; ``blacklist_exclude_test_ac.json``: the 2090 Clotho val+eval FreeSound ids and
the AudioCaps test clips, Primus et al. 2024, sec. 4.1), ``all`` (``blacklist_exclude_all_ac.json``: every Clotho and
AudioCaps clip), ``none``, or a path/URL of a JSON in that format. Every clip is split ``train``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from salsa2.data.archive import extract_to
from salsa2.data.datasets import DATASETS
from salsa2.data.datasets.base import Clip, Prepared, prepare_clips, reject
from salsa2.utils.download import DownloadError, Remote, fetch

HF_REVISION = "85a0c21e26fa7696a5a74ce54fada99a9b43c6de"
HF = f"https://huggingface.co/datasets/cvssp/WavCaps/resolve/{HF_REVISION}"
BLACKLISTS = "https://raw.githubusercontent.com/XinhaoMei/WavCaps/master/data/json_files/blacklist"
SOURCES = {  # source -> (metadata json, split zip?, blacklist key)
    "FreeSound": ("fsd_final.json", True, "FreeSound"),
    "BBC_Sound_Effects": ("bbc_final.json", True, None),
    "SoundBible": ("sb_final.json", False, None),
    "AudioSet_SL": ("as_final.json", True, "AudioSet"),
}
EXCLUDE = {"test": "blacklist_exclude_test_ac.json", "all": "blacklist_exclude_all_ac.json"}


def read_metadata(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    items = data["data"] if isinstance(data, dict) else data
    if not isinstance(items, list) or any(not isinstance(i, dict) or "id" not in i or "caption" not in i
                                          for i in items):
        raise ValueError(f"{path}: expected a list of {{id, caption, ...}} (or {{'data': [...]}}); is it WavCaps JSON?")
    return items


def audio_name(source: str, item_id: str) -> str:
    return item_id.replace(".wav", ".flac") if source == "AudioSet_SL" else f"{item_id}.flac"


def load_blacklist(exclude: str, root: Path, download: bool, blacklist_url: str) -> dict[str, set[str]]:
    if exclude == "none":
        return {}
    if exclude in EXCLUDE:
        path = root / "blacklist" / EXCLUDE[exclude]
        if download:
            fetch(Remote(path.name, f"{blacklist_url.rstrip('/')}/{path.name}"), path.parent)
    elif exclude.startswith(("http://", "https://")):
        path = fetch(Remote(Path(exclude.split("?")[0]).name, exclude), root / "blacklist")
    else:
        path = Path(exclude)
    if not path.exists():
        raise FileNotFoundError(f"{path}: WavCaps blacklist missing; run with download: true or set exclude: none")
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    return {key: set(map(str, ids)) for key, ids in data.items()}


def merge_split_zip(first: Path, merged: Path) -> Path:
    """Join a split archive (``x.z01`` ... ``x.zip``) into one zip Python can read (``zip -s 0``)."""
    if shutil.which("zip") is None:
        raise RuntimeError(f"{first} is a split zip; install Info-ZIP `zip` (apt-get install zip) to merge it, "
                           "or extract it yourself and set audio_dir")
    tmp = merged.with_name(merged.name + ".tmp.zip")
    try:
        subprocess.run(["zip", "-q", "-s", "0", str(first), "--out", str(tmp)], check=True, stdin=subprocess.DEVNULL)
    except (subprocess.CalledProcessError, OSError):
        tmp.unlink(missing_ok=True)
        raise
    tmp.replace(merged)
    return merged


def fetch_audio(source: str, root: Path, base_url: str, split: bool, keep_archives: bool) -> Path:
    """Download and extract ``Zip_files/<source>/`` into ``root/audio/<source>``."""
    target = root / "audio" / source
    archives = root / "archives" / source
    url = f"{base_url.rstrip('/')}/Zip_files/{source}"
    main = fetch(Remote(f"{source}.zip", f"{url}/{source}.zip"), archives)
    archive = main
    if split:
        parts = []
        for i in range(1, 1000):
            try:
                parts.append(fetch(Remote(f"{source}.z{i:02d}", f"{url}/{source}.z{i:02d}"), archives))
            except DownloadError as err:
                if "HTTP 404" not in str(err):
                    raise
                break
        if parts:
            archive = merge_split_zip(main, archives / f"{source}_merged.zip")
    extract_to(archive, target, keep=lambda m: m.lower().endswith(".flac"))
    flat = {p.name: p for p in target.rglob("*.flac")}
    for fname, path in flat.items():  # files may sit in a sub-folder of the zip: flatten
        if path.parent != target:
            path.rename(target / fname)
    for d in sorted((p for p in target.rglob("*") if p.is_dir()), reverse=True):
        d.rmdir()
    if not keep_archives:
        shutil.rmtree(archives)
        if not any(archives.parent.iterdir()):
            archives.parent.rmdir()
    return target


@DATASETS.register("wavcaps")
def prepare_wavcaps(
    root: str = "data/raw/wavcaps",
    sources: tuple[str, ...] | list[str] = tuple(SOURCES),
    exclude: str = "test",
    audio_dir: str | None = None,
    download: bool = True,
    base_url: str = HF,
    blacklist_url: str = BLACKLISTS,
    keep_archives: bool = False,
    name: str = "wavcaps",
) -> Prepared:
    """Args: root: where metadata, blacklists and audio go; sources: some of FreeSound, BBC_Sound_Effects,
    SoundBible, AudioSet_SL; exclude: test | all | none | path or URL of a blacklist JSON; audio_dir: an
    extracted copy (``<audio_dir>/<Source>/*.flac``); base_url: the HF dataset revision (or a mirror)."""
    root_path = Path(root)
    blacklist = load_blacklist(exclude, root_path, download, blacklist_url)
    clips: list[Clip] = []
    rejects: list[dict] = []
    for source in sources:
        if source not in SOURCES:
            raise ValueError(f"wavcaps: unknown source {source!r}; use some of {list(SOURCES)}")
        meta_name, split, key = SOURCES[source]
        meta = root_path / "json_files" / source / meta_name
        if download:
            fetch(Remote(meta_name, f"{base_url.rstrip('/')}/json_files/{source}/{meta_name}"), meta.parent)
        if not meta.exists():
            raise FileNotFoundError(f"{meta}: WavCaps metadata missing; run with download: true")
        audio = Path(audio_dir) / source if audio_dir else root_path / "audio" / source
        if download and not audio_dir and not audio.is_dir():
            fetch_audio(source, root_path, base_url, split, keep_archives)
        banned = blacklist.get(key, set()) if key else set()
        for item in read_metadata(meta):
            item_id = str(item["id"])
            audio_id = f"{name}/{source}/{Path(audio_name(source, item_id)).stem}"
            path = audio / audio_name(source, item_id)
            if item_id in banned:
                rejects.append(reject(audio_id, path, "excluded", f"overlaps evaluation data (exclude: {exclude})"))
                continue
            clips.append(Clip(audio_id, "train", path, [str(item["caption"])]))
    return prepare_clips(clips, name, f"wavcaps ({root_path})", rejects)
