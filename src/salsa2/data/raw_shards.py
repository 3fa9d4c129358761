"""Raw datasets as DVC tracks them best: a few large tar shards, not hundreds of thousands of loose files.

Stage ``download@<name>`` fetches a dataset into a scratch folder of its own (``scratch_for``: named after its
params, so nothing of a run with other params is found there) and ``pack``s it into
``data/raw/<name>/shard-00000.tar ...`` plus ``manifest.json`` (the DVC output). ``unpack`` restores the
folder tree under ``data/unpacked/<name>`` (git-ignored, derived, never a DVC output) wherever it is
missing or from other shards, so that prepare and features find the audio in any checkout, including ``dvc exp
run --temp`` and queued runs; the download hands its packed folder over as that copy (``hand_over``). Shards are
uncompressed (audio is already compressed or incompressible) and bit-reproducible: members sorted,
mtime/uid/gid zeroed. Measured costs: docs/datasets.md.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tarfile
import tempfile
from collections.abc import Iterable
from pathlib import Path

from salsa2.utils.digest import file_digest
from salsa2.utils.fsutil import atomic_dir, read_json, remove_stale_temps, write_json

SHARD_BYTES = 2**30  # 1 GiB per shard: ~400 shards at WavCaps scale instead of ~400k files
MANIFEST = "manifest.json"
MARKER = ".unpacked-from"


def _normalized(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
    return info


def pack(src: str | Path, out_dir: str | Path, shard_bytes: int = SHARD_BYTES) -> dict:
    """Every file under ``src`` into tar shards of about ``shard_bytes`` in ``out_dir`` (appears whole)."""
    src = Path(src)
    files = sorted(p for p in src.rglob("*") if p.is_file() and p.name != MARKER)
    shards: list[dict] = []
    with atomic_dir(out_dir) as tmp:
        tar, size = None, 0
        for path in files:
            if tar is None or size >= shard_bytes:
                if tar is not None:
                    tar.close()
                name = f"shard-{len(shards):05d}.tar"
                tar = tarfile.open(tmp / name, "w", format=tarfile.PAX_FORMAT)
                shards.append({"file": name, "members": 0})
                size = 0
            tar.add(path, arcname=path.relative_to(src).as_posix(), filter=_normalized)
            shards[-1]["members"] += 1
            size += path.stat().st_size
        if tar is not None:
            tar.close()
        for entry in shards:
            entry["sha256"] = file_digest(tmp / entry["file"])
        manifest = {"files": len(files), "shards": shards}
        write_json(tmp / MANIFEST, manifest)
    (src / MARKER).write_text(_fingerprint(Path(out_dir)))  # ``src`` is an up-to-date unpacked copy
    return manifest


def _fingerprint(shards_dir: Path) -> str:
    """The shards' content, cheaply: the manifest holds every shard's sha256 (written with the shards)."""
    return file_digest(shards_dir / MANIFEST)


def unpack(shards_dir: str | Path, dest: str | Path) -> Path:
    """The folder tree of ``shards_dir`` at ``dest``; a no-op when ``dest`` already holds these shards."""
    shards_dir, dest = Path(shards_dir), Path(dest)
    if not (shards_dir / MANIFEST).is_file():
        raise FileNotFoundError(f"{shards_dir}: no {MANIFEST}; run `dvc repro download@{shards_dir.name}` "
                                "(or `dvc pull`) first")
    fingerprint = _fingerprint(shards_dir)
    marker = dest / MARKER
    if marker.is_file() and marker.read_text() == fingerprint:
        return dest
    with atomic_dir(dest) as tmp:
        for entry in read_json(shards_dir / MANIFEST)["shards"]:
            with tarfile.open(shards_dir / entry["file"]) as tar:
                tar.extractall(tmp, filter="data")
        (tmp / MARKER).write_text(fingerprint)
    return dest


def downloads_of(paths: Iterable[str], unpacked_root: str | Path) -> list[str]:
    """The downloads (folders of ``unpacked_root``) that ``paths`` (a table's audio paths) point into."""
    root = os.path.abspath(unpacked_root)
    names = set()
    for path in paths:
        rel = os.path.relpath(os.path.abspath(path), root)
        if rel != os.curdir and rel != os.pardir and not rel.startswith(os.pardir + os.sep):
            names.add(rel.split(os.sep)[0])
    return sorted(names)


def unpack_referenced(paths: Iterable[str], raw_root: str | Path, unpacked_root: str | Path) -> dict[str, Path]:
    """``unpack`` every download that ``paths`` point into, from ``raw_root/<name>`` to ``unpacked_root/<name>``;
    name -> folder. Which downloads exist is read from the tables, not from params ``downloads``, so a stage
    that calls this depends on the data alone."""
    return {name: unpack(Path(raw_root) / name, Path(unpacked_root) / name)
            for name in downloads_of(paths, unpacked_root)}


def scratch_for(entry: dict, scratch_root: str | Path) -> Path:
    """The folder stage download@<name> fetches into: ``scratch_root/<digest of its params entry>``.

    Other params (a new ``base_url``, other sources) get another folder, so every file is fetched anew from
    where they say; the same params find the partial downloads of a run that failed and resume them. Folders
    of other params are removed first."""
    key = hashlib.sha256(json.dumps(entry, sort_keys=True, default=str).encode()).hexdigest()[:16]
    root = Path(scratch_root)
    for old in root.iterdir() if root.is_dir() else ():
        if old.name != key:
            shutil.rmtree(old) if old.is_dir() and not old.is_symlink() else old.unlink()
    return root / key


def hand_over(work: str | Path, unpacked: str | Path) -> Path:
    """After ``pack``: the fetched folder ``work`` (it carries the marker of the shards just written) replaces the
    unpacked copy at ``unpacked``, so that prepare need not unpack the same files again; the emptied scratch
    folder is removed."""
    work, unpacked = Path(work), Path(unpacked)
    if not (work / MARKER).is_file():
        raise RuntimeError(f"{work}: not packed; pack it before handing it over")
    unpacked.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(unpacked)
    aside = None
    if unpacked.exists() or unpacked.is_symlink():  # moved aside first: a kill leaves the old or the new copy
        aside = Path(tempfile.mkdtemp(prefix=f".{unpacked.name}.{os.getpid()}.", suffix=".old.tmp",
                                      dir=unpacked.parent))
        os.rename(unpacked, aside / "x")
    os.rename(work, unpacked)
    if aside is not None:
        shutil.rmtree(aside, ignore_errors=True)
    if not any(work.parent.iterdir()):
        work.parent.rmdir()
    return unpacked
