"""WavCaps (Mei et al., 2023) as published on the HuggingFace hub (cvssp/WavCaps): four sources.

``json_files/<Source>/<x>_final.json`` holds ``{"data": [{"id", "caption", "duration", ...}]}`` (the
GitHub copy is the bare list; both are read); ``Zip_files/<Source>/<Source>.zip`` holds the flac files
(AudioSet_SL ids are ``Y<ytid>.wav`` -> ``Y<ytid>.flac``, the others ``<id>`` -> ``<id>.flac``). The three
large sources are split zips (``.z01`` ...): they are downloaded part by part, joined (``archive.join_split_zip``:
``zip -s 0``, else zip's repair mode), the parts deleted, then extracted; or you point ``audio_dir`` at an
extracted copy (``<audio_dir>/<Source>/``). Files whose sha256 the Hugging Face repository shows are checked
against ``PINS`` (docs/datasets.md: which files, disk needs).

Clips that overlap the evaluation data are excluded with the lists of ``wavcaps_exclusions``: ``exclude: test``
(default; the WavCaps authors' blacklist of Clotho val+eval and AudioCaps val+test, Primus et al. 2024, sec. 4.1),
``all``, ``dcase2025`` (the DCASE 2025 task 6 list of FreeSound ids), ``none``, a path/URL of a list, or several
of them (``[test, dcase2025]``). Every clip is split ``train``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from salsa2.data.archive import ArchiveError, extract_to, join_split_zip
from salsa2.data.datasets import DATASETS
from salsa2.data.datasets.base import Clip, Prepared, prepare_clips, reject
from salsa2.data.datasets.wavcaps_exclusions import BLACKLISTS, DCASE2025_URL, load_exclusions
from salsa2.utils.download import DownloadError, Remote, fetch

HF_REVISION = "85a0c21e26fa7696a5a74ce54fada99a9b43c6de"
HF = f"https://huggingface.co/datasets/cvssp/WavCaps/resolve/{HF_REVISION}"
SOURCES = {  # source -> (metadata json, split zip?, exclusion-list key)
    "FreeSound": ("fsd_final.json", True, "FreeSound"),
    "BBC_Sound_Effects": ("bbc_final.json", True, None),
    "SoundBible": ("sb_final.json", False, None),
    "AudioSet_SL": ("as_final.json", True, "AudioSet"),
}
# sha256 (and size, where known exactly) of the files at HF_REVISION, as the Hugging Face file pages show them
# ("Git LFS Details" of huggingface.co/datasets/cvssp/WavCaps/blob/<main or ac02ab3>/Zip_files/...). Zip_files changed
# in two commits only: 668b4c0 uploaded them, e1fa78c added 22 FreeSound parts (none of those pinned from ac02ab3),
# so these digests hold at HF_REVISION. Files not listed are checked against their first download.
PINS: dict[str, tuple[str, int | None]] = {
    "Zip_files/BBC_Sound_Effects/BBC_Sound_Effects.z01":
        ("9baf1005283de95f8c705dfc34ad8f7850035acfde8654c716541c7106cf1dc3", None),
    "Zip_files/BBC_Sound_Effects/BBC_Sound_Effects.z02":
        ("42bb175db23256473304d2262ed83dc119a7e7ce8416cd72e453485e08c0e33f", None),
    "Zip_files/BBC_Sound_Effects/BBC_Sound_Effects.z03":
        ("9caa51d23b83418bca7143d9497e4e16b8fdac72cc607202e3e2375b3f1faa99", None),
    "Zip_files/BBC_Sound_Effects/BBC_Sound_Effects.z08":
        ("16ec4456f2d4975ba06bcfc8580c93fab8f2cd5810d71d90f3c15a6dbd0f0f88", None),
    "Zip_files/BBC_Sound_Effects/BBC_Sound_Effects.z09":
        ("6437887d65fa7ea05b2797772e6d13d5ca0a94fd51b3193a22841e4dce2964ee", None),
    "Zip_files/BBC_Sound_Effects/BBC_Sound_Effects.z10":
        ("588ae1bbddca76cb46aef033cc5edebd6689ff52132121be3697cbb191e5adea", None),
    "Zip_files/BBC_Sound_Effects/BBC_Sound_Effects.z13":
        ("59247d39724a0a610f61e0a7ad043d0fedd61087d5be17642ab4e08662ade0d2", None),
    "Zip_files/BBC_Sound_Effects/BBC_Sound_Effects.z16":
        ("a2300c1e357b70e8b6930de8eb6ce0ed5252027f21b736a4d6fff5e8ff18f08f", None),
    "Zip_files/BBC_Sound_Effects/BBC_Sound_Effects.z19":
        ("2e678c5a0c7d97dac79325efa6c418ad92f39cd1bcad1ddd97f857112af914d7", None),
    "Zip_files/BBC_Sound_Effects/BBC_Sound_Effects.z20":
        ("68635d5018fd6ff5795897a5d5a5d3224ee8da45c4644d75ce86bc8711a09173", None),
    "Zip_files/BBC_Sound_Effects/BBC_Sound_Effects.z24":
        ("73b91180038190e4dcd874153e08490c39bc64bd67e4148f27da41f517d2c568", None),
    "Zip_files/FreeSound/FreeSound.z04":
        ("005778af1c0f27ac048210897c1c2113579512c59d2093bcb0bd213485820e2b", None),
    "Zip_files/FreeSound/FreeSound.z13":
        ("019d0991d481c64cd0442e15ddae0540b831717f94c16a88b164f5b51613c41d", None),
    "Zip_files/FreeSound/FreeSound.z15":
        ("8a8ec5a9b158130ebbfad66c3dd315e2cfde189169e9f54098328a87183ad5ba", None),
    "Zip_files/FreeSound/FreeSound.z19":
        ("963a4e73d8b3f9a227897b7b1ace2ab53163958a2594695f2d86fcf722b796ac", None),
    "Zip_files/FreeSound/FreeSound.z21":
        ("d500b02040009169300ed6eb1912030a69be0189d72fa6bbc84dc9c58f20065e", None),
    "Zip_files/FreeSound/FreeSound.z22":
        ("6ce9c0870859402a49e681e997888b1c431475b8ba06b510998451e052c6f4a7", None),
    "Zip_files/FreeSound/FreeSound.z25":
        ("daacdf3fd2be625f134edf2bbeeb8f56f6c243df3663042e60fa4582aa825e3b", None),
    "Zip_files/FreeSound/FreeSound.z26":
        ("4840943b68e2a777eac2df6bb6cf73a05e556af8b7be94b36440527637baf43f", None),
    "Zip_files/FreeSound/FreeSound.z28":
        ("66d2d588619a030767e12d34128f03820e70b9e040b784af3fe88a07f32d05e0", None),
    "Zip_files/FreeSound/FreeSound.z109":
        ("58442590e2bf99060ac02ca4183bb96d476bf64cb4cdae820e8daef844efedb6", None),
    "Zip_files/FreeSound/FreeSound.z120":
        ("873091db2f2d85c4a7a8b102023694bc61fe238d17a1d20f069f68d493b5262b", None),
}


def published_remote(rel: str, url: str, check: bool, pins: dict[str, tuple[str, int | None]]) -> Remote:
    """``Remote`` of the file ``rel`` (its path in the HF repository) at ``url``; with ``check`` its pin applies."""
    digest, size = pins.get(rel, (None, None)) if check else (None, None)
    return Remote(Path(rel).name, url, sha256=digest, size=size)


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


def fetch_audio(source: str, root: Path, base_url: str, split: bool, keep_archives: bool, check: bool,
                pins: dict[str, tuple[str, int | None]]) -> Path:
    """Download and extract ``Zip_files/<source>/`` into ``root/audio/<source>``.

    A split zip needs Info-ZIP ``zip`` (checked before the first part is fetched); its parts are deleted once joined
    (unless ``keep_archives``), so the peak disk of a source is twice its archives. A joined archive left by a run
    that failed later is extracted without downloading again."""
    target = root / "audio" / source
    archives = root / "archives" / source
    url = f"{base_url.rstrip('/')}/Zip_files/{source}"
    joined = archives / f"{source}_merged.zip"
    if split and shutil.which("zip") is None:
        raise ArchiveError(f"{url}/{source}.zip is a split zip; install Info-ZIP zip (apt-get install zip) to join "
                           "it before its parts are downloaded, or extract it yourself and set audio_dir")
    if split and joined.is_file():
        archive = joined
    else:
        rel = f"Zip_files/{source}"
        archive = fetch(published_remote(f"{rel}/{source}.zip", f"{url}/{source}.zip", check, pins), archives)
        parts = []
        for i in range(1, 1000) if split else ():
            name = f"{source}.z{i:02d}"
            try:
                parts.append(fetch(published_remote(f"{rel}/{name}", f"{url}/{name}", check, pins), archives))
            except DownloadError as err:
                if "HTTP 404" not in str(err):
                    raise
                break
        if parts:
            archive = join_split_zip(archive, joined)
            if not keep_archives:
                for path in [archives / f"{source}.zip", *parts]:
                    path.unlink()
                    path.with_name(f".{path.name}.sha256").unlink(missing_ok=True)
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
    exclude: str | list[str] = "test",
    audio_dir: str | None = None,
    download: bool = True,
    base_url: str = HF,
    blacklist_url: str = BLACKLISTS,
    dcase2025_url: str = DCASE2025_URL,
    pinned: bool | None = None,
    pins: dict[str, tuple[str, int | None]] | None = None,
    keep_archives: bool = False,
    name: str = "wavcaps",
) -> Prepared:
    """Args: root: where metadata, exclusion lists and audio go; sources: some of FreeSound, BBC_Sound_Effects,
    SoundBible, AudioSet_SL; exclude: test | all | dcase2025 | none | path or URL of a list, or a list of these;
    audio_dir: an extracted copy (``<audio_dir>/<Source>/*.flac``); base_url: the HF dataset revision (or a
    mirror); blacklist_url / dcase2025_url: where the named lists come from; pinned: check published sha256s
    (None: for files fetched from the publisher's address only); pins: the table checked (default ``PINS``)."""
    root_path = Path(root)
    check = pinned if pinned is not None else base_url.rstrip("/") == HF
    pins = PINS if pins is None else pins
    urls = {"test": f"{blacklist_url.rstrip('/')}/blacklist_exclude_test_ac.json",
            "all": f"{blacklist_url.rstrip('/')}/blacklist_exclude_all_ac.json", "dcase2025": dcase2025_url}
    excluded = load_exclusions(exclude, root_path / "blacklist", download, urls, pinned)
    clips: list[Clip] = []
    rejects: list[dict] = []
    for source in sources:
        if source not in SOURCES:
            raise ValueError(f"wavcaps: unknown source {source!r}; use some of {list(SOURCES)}")
        meta_name, split, key = SOURCES[source]
        meta = root_path / "json_files" / source / meta_name
        if download:
            rel = f"json_files/{source}/{meta_name}"
            fetch(published_remote(rel, f"{base_url.rstrip('/')}/{rel}", check, pins), meta.parent)
        if not meta.exists():
            raise FileNotFoundError(f"{meta}: WavCaps metadata missing; run with download: true")
        audio = Path(audio_dir) / source if audio_dir else root_path / "audio" / source
        if download and not audio_dir and not audio.is_dir():
            fetch_audio(source, root_path, base_url, split, keep_archives, check, pins)
        banned = excluded.get(key, set()) if key else set()
        for item in read_metadata(meta):
            item_id = str(item["id"])
            audio_id = f"{name}/{source}/{Path(audio_name(source, item_id)).stem}"
            path = audio / audio_name(source, item_id)
            if item_id in banned:
                rejects.append(reject(audio_id, path, "excluded", f"overlaps evaluation data (exclude: {exclude})"))
                continue
            clips.append(Clip(audio_id, "train", path, [str(item["caption"])]))
    return prepare_clips(clips, name, f"wavcaps ({root_path})", rejects)
