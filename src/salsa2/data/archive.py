"""Safe extraction of the archives datasets are published in (zip, 7z, tar[.gz|.bz2|.xz]).

Every member is checked before anything is written: an absolute path, a ``..`` component, or a link whose
target leaves the destination (directly, or through other links of the archive) is refused with
``UnsafeArchiveError`` naming the archive and the member; so is an archive whose stated expanded size exceeds
``MAX_RATIO`` times its own size or the free disk space. The destination directory appears atomically
(``fsutil.atomic_dir``): whole, or not at all. ``join_split_zip`` turns a split zip into one (Info-ZIP).
"""

from __future__ import annotations

import os
import posixpath
import re
import shutil
import stat
import struct
import subprocess
import tarfile
import zipfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath

from tqdm import tqdm

from salsa2.utils.errors import UserError
from salsa2.utils.fsutil import atomic_dir, pid_alive, remove_stale_temps

MAX_RATIO = 100.0  # expanded / archive size; audio (wav/flac) compresses < 3x, a zip bomb ~1000x


class ArchiveError(UserError, RuntimeError):
    """An archive that cannot be read or has an unknown format."""


class UnsafeArchiveError(ArchiveError):
    """A member that would be written outside the destination directory."""

    def __init__(self, archive: str | Path, member: str, reason: str) -> None:
        self.archive, self.member, self.reason = str(archive), member, reason
        super().__init__(
            f"{archive}: member {member!r} refused ({reason}); the archive is not the one published or was "
            "tampered with: delete it and download it again"
        )


def archive_format(path: str | Path) -> str:
    name = Path(path).name.lower()
    if name.endswith(".zip"):
        return "zip"
    if name.endswith(".7z"):
        return "7z"
    if name.endswith((".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")):
        return "tar"
    raise ArchiveError(f"{path}: unknown archive format; expected .zip, .7z or .tar[.gz|.bz2|.xz]")


def check_member(archive: str | Path, name: str, link_target: str | None = None) -> str:
    """The normalised relative path of member ``name``; raise ``UnsafeArchiveError`` if it escapes."""
    if not name or "\x00" in name:
        raise UnsafeArchiveError(archive, name, "empty or NUL in name")
    unified = name.replace("\\", "/")
    if unified.startswith("/") or (len(unified) > 1 and unified[1] == ":"):
        raise UnsafeArchiveError(archive, name, "absolute path")
    parts = PurePosixPath(unified).parts
    if ".." in parts:
        raise UnsafeArchiveError(archive, name, "'..' in path")
    if link_target is not None:
        target = link_target.replace("\\", "/")
        if target.startswith("/"):
            raise UnsafeArchiveError(archive, name, f"link to absolute path {link_target!r}")
        resolved = posixpath.normpath(posixpath.join(posixpath.dirname(unified), target))
        if resolved == ".." or resolved.startswith("../"):
            raise UnsafeArchiveError(archive, name, f"link to {link_target!r} points outside the destination")
    return posixpath.normpath(unified)


def _zip_members(archive: Path, zf: zipfile.ZipFile) -> list[zipfile.ZipInfo]:
    members = []
    for info in zf.infolist():
        mode = info.external_attr >> 16
        target = zf.read(info).decode("utf-8", "replace") if stat.S_ISLNK(mode) else None
        check_member(archive, info.filename, target)
        members.append(info)
    return members


def _resolve_through_links(path: str, links: dict[str, str], depth: int = 0) -> str | None:
    """``path`` (relative, posix) with the archive's own symlinks followed; None when it leaves the root."""
    if depth > 40:
        return None
    resolved: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not resolved:
                return None
            resolved.pop()
            continue
        here = "/".join([*resolved, part])
        if here in links:
            target = links[here]
            if target.startswith("/"):
                return None
            followed = _resolve_through_links(posixpath.join("/".join(resolved), target), links, depth + 1)
            if followed is None:
                return None
            resolved = followed.split("/") if followed else []
        else:
            resolved.append(part)
    return "/".join(resolved)


def _tar_members(archive: Path, tf: tarfile.TarFile) -> list[tarfile.TarInfo]:
    members = []
    for info in tf.getmembers():
        if info.issym():
            check_member(archive, info.name, info.linkname)
        elif info.islnk():  # hard link targets are archive paths, relative to the destination root
            check_member(archive, info.name)
            check_member(archive, info.linkname)
        elif info.isdev() or info.isfifo():
            raise UnsafeArchiveError(archive, info.name, "device or FIFO member")
        else:
            check_member(archive, info.name)
        members.append(info)
    links = {posixpath.normpath(m.name): m.linkname.replace("\\", "/") for m in members if m.issym()}
    for m in members:  # each link checked alone above; now follow chains of links (a -> b/c/.., b/c -> ..)
        name = posixpath.normpath(m.name)
        parent = _resolve_through_links(posixpath.dirname(name), links)
        if parent is None:
            raise UnsafeArchiveError(archive, m.name, "chained symlink: its folder leads outside the destination "
                                     "through other links of the archive")
        if m.issym() and _resolve_through_links(posixpath.join(parent, links[name]), links) is None:
            raise UnsafeArchiveError(archive, m.name, f"chained symlink: {m.linkname!r} leads outside the "
                                     "destination through other links of the archive")
    return members


def list_members(archive: str | Path) -> list[str]:
    """Checked member names (files only) of ``archive``."""
    archive = Path(archive)
    fmt = archive_format(archive)
    try:
        if fmt == "zip":
            with zipfile.ZipFile(archive) as zf:
                return [m.filename for m in _zip_members(archive, zf) if not m.is_dir()]
        if fmt == "tar":
            with tarfile.open(archive) as tf:
                return [m.name for m in _tar_members(archive, tf) if m.isfile()]
        import py7zr

        with py7zr.SevenZipFile(archive) as sz:
            return [i.filename for i in _7z_members(archive, sz) if not i.is_directory]
    except (zipfile.BadZipFile, tarfile.TarError, EOFError) as err:
        raise ArchiveError(f"{archive}: cannot read archive ({err}); delete it and download it again") from None


def _7z_members(archive: Path, sz) -> list:
    members = []
    for info in sz.list():
        if getattr(info, "is_symlink", False):  # py7zr shows a link's target only on extraction: refuse links
            raise UnsafeArchiveError(archive, info.filename, "symbolic link in 7z archive")
        check_member(archive, info.filename)
        members.append(info)
    return members


def _check_size(archive: Path, sizes: list[int], dest: Path, max_ratio: float | None) -> None:
    """Refuse an archive whose members would expand beyond ``max_ratio`` x its size or the free disk space."""
    total = sum(sizes)
    packed = max(archive.stat().st_size, 1)
    if max_ratio is not None and total > max_ratio * packed and total > 1 << 20:
        raise ArchiveError(
            f"{archive}: expands to {total} bytes, {total / packed:.0f} times its size (limit {max_ratio:g}x); it is "
            "not an audio archive as published (a zip bomb?): delete it and download it again, or pass "
            "max_ratio=None if you trust it"
        )
    free = shutil.disk_usage(_existing_parent(dest)).free
    if total > free:
        raise ArchiveError(f"{archive}: expands to {total} bytes but only {free} are free under {dest.parent}; "
                           "free some space and run again")


def _existing_parent(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def extract(
    archive: str | Path,
    dest: str | Path,
    *,
    keep: Callable[[str], bool] | None = None,
    progress: bool = True,
    max_ratio: float | None = MAX_RATIO,
) -> Path:
    """Extract ``archive`` into ``dest`` (created atomically; an existing ``dest`` is replaced).

    ``keep(member_name) -> bool`` selects members (default: all). All members are checked first, so a
    malicious member or an expanded size over ``max_ratio`` x the archive (or the free space) fails the whole
    extraction before any file is written.
    """
    archive, dest = Path(archive), Path(dest)
    fmt = archive_format(archive)
    try:
        with atomic_dir(dest) as tmp:
            if fmt == "zip":
                with zipfile.ZipFile(archive) as zf:
                    members = [m for m in _zip_members(archive, zf) if keep is None or keep(m.filename)]
                    _check_size(archive, [m.file_size for m in members], dest, max_ratio)
                    for m in tqdm(members, desc=f"extract {archive.name}", unit="file", disable=not progress):
                        zf.extract(m, tmp)
            elif fmt == "tar":
                with tarfile.open(archive) as tf:
                    members = [m for m in _tar_members(archive, tf) if keep is None or keep(m.name)]
                    _check_size(archive, [m.size for m in members if m.isfile()], dest, max_ratio)
                    tf.extractall(tmp, members=members, filter="data")
            else:
                import py7zr

                with py7zr.SevenZipFile(archive) as sz:
                    infos = [i for i in _7z_members(archive, sz) if keep is None or keep(i.filename)]
                    _check_size(archive, [int(i.uncompressed or 0) for i in infos], dest, max_ratio)
                    sz.reset()
                    sz.extract(path=tmp, targets=[i.filename for i in infos])
    except tarfile.FilterError as err:  # tarfile's own check, should ours have missed a case
        member = getattr(getattr(err, "tarinfo", None), "name", "?")
        raise UnsafeArchiveError(archive, member, str(err)) from None
    except (zipfile.BadZipFile, tarfile.TarError, EOFError) as err:
        raise ArchiveError(f"{archive}: cannot read archive ({err}); delete it and download it again") from None
    except Exception as err:
        if type(err).__module__.startswith("py7zr"):
            raise ArchiveError(f"{archive}: cannot read 7z archive ({err}); delete it and download it again") from None
        raise
    return dest


def extract_to(
    archive: str | Path, target: str | Path, *, inner: str = "", keep: Callable[[str], bool] | None = None,
    max_ratio: float | None = MAX_RATIO,
) -> Path:
    """Extract ``archive`` so that its folder ``inner`` (or its root) becomes ``target``, atomically.

    An existing ``target`` is refused before anything is extracted; the staging folder never outlives the call."""
    target = Path(target)
    if target.exists():
        raise ArchiveError(f"{target} already exists; remove it to extract {archive} again")
    staging = target.with_name(f".{target.name}.{os.getpid()}.extract.tmp")
    remove_stale_temps(target)
    nested = re.compile(rf"^\.\.{re.escape(target.name)}\.(\d+)\.extract\.tmp\.\d+\.[a-z0-9_]{{8}}\.tmp$")
    for left in target.parent.glob(f"..{target.name}.*.tmp") if target.parent.is_dir() else ():
        m = nested.match(left.name)  # extract()'s own temp folder of a killed extract_to
        if m and int(m.group(1)) != os.getpid() and not pid_alive(int(m.group(1))):
            shutil.rmtree(left, ignore_errors=True)
    try:
        extract(archive, staging, keep=keep, max_ratio=max_ratio)
        source = staging / inner if inner and (staging / inner).is_dir() else staging
        if target.exists():
            raise ArchiveError(f"{target} appeared while {archive} was extracted; remove it and run again")
        source.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def join_split_zip(first: str | Path, joined: str | Path) -> Path:
    """Join a split zip (``x.z01`` ... ``x.zip``, Info-ZIP ``zip -s``) into the single zip ``joined``.

    ``zip -s 0`` copies the entries as its central directory lists them; where it refuses the archive, zip's
    repair mode ``zip -FF`` rebuilds the directory from the entries themselves, the way the references join
    WavCaps (Labbeti/aac-datasets: ``zip -FF``; the WavCaps README: ``zip -F``). Every prompt of zip is
    answered ``q`` (abort), so a missing part fails instead of waiting for a keyboard. Both failing raises
    ``ArchiveError`` (one line: the archive, both of zip's reasons, the fix); ``joined`` appears whole or not at all.
    """
    first, joined = Path(first), Path(joined)
    if shutil.which("zip") is None:
        raise ArchiveError(f"{first} is a split zip; install Info-ZIP zip (apt-get install zip) to join it, or "
                           "extract it yourself and set audio_dir")
    parts = sorted(first.parent.glob(f"{first.stem}.z[0-9][0-9]*"))
    need = sum(p.stat().st_size for p in [first, *parts])
    free = shutil.disk_usage(_existing_parent(joined.parent)).free
    if need > free:
        raise ArchiveError(f"{first}: joining its {len(parts) + 1} parts needs {need} bytes, {free} are free under "
                           f"{joined.parent}; free some space (docs/datasets.md lists the disk a dataset needs) and "
                           "run again")
    joined.parent.mkdir(parents=True, exist_ok=True)
    tmp = joined.with_name(f".{joined.stem}.{os.getpid()}.tmp.zip")  # zip insists on a .zip suffix
    expected = _listed_entries(first)  # the end record of the last part counts the entries of the whole archive
    reasons = []
    try:
        for mode in (["-q", "-s", "0"], ["-FF"]):  # `-FF -q` writes an empty zip (Info-ZIP 3.0)
            tmp.unlink(missing_ok=True)
            proc = subprocess.run(["zip", *mode, str(first), "--out", str(tmp)], input=b"q\n" * 100,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            found = _zip_entries(tmp) if proc.returncode == 0 else None
            if found is not None and (expected is None or found >= expected):
                tmp.replace(joined)
                return joined
            reasons.append(f"`zip {' '.join(m for m in mode if m != '-q')}` {_zip_failure(proc, found, expected)}")
    finally:
        tmp.unlink(missing_ok=True)
    raise ArchiveError(f"{first}: cannot join this split zip ({len(parts)} .zNN parts found): {reasons[0]}; "
                       f"repair mode {reasons[1]}. A part is missing or damaged: delete {first.parent} and run again "
                       "to download the parts anew, or extract the archive yourself and set audio_dir")


def _zip_entries(path: Path) -> int | None:
    """The number of entries of the zip ``path``; None when Python cannot read it."""
    try:
        with zipfile.ZipFile(path) as zf:
            return len(zf.infolist())
    except (OSError, zipfile.BadZipFile):
        return None


def _listed_entries(last_part: Path) -> int | None:
    """The entry count the end-of-central-directory record of ``last_part`` states (ZIP64 too); None if unreadable.

    Zip's repair mode salvages what it can and exits 0 even when a part is missing, so its result is held to
    this count."""
    size = last_part.stat().st_size
    with open(last_part, "rb") as f:
        f.seek(max(0, size - (1 << 16) - 22))
        tail = f.read()
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) < at + 22:
        return None
    count = struct.unpack_from("<H", tail, at + 10)[0]
    if count != 0xFFFF:
        return count
    at64 = tail.rfind(b"PK\x06\x06", 0, at)
    return struct.unpack_from("<Q", tail, at64 + 32)[0] if at64 >= 0 and len(tail) >= at64 + 40 else None


def _zip_failure(proc: subprocess.CompletedProcess, found: int | None, expected: int | None) -> str:
    """Why a join failed, in a few words: zip's last ``zip error`` line (or last line) and exit status, or the
    entries missing from what it wrote."""
    if proc.returncode == 0:
        return "wrote no readable zip" if found is None else f"kept {found} of the {expected} entries"
    lines = [line.strip() for line in proc.stdout.decode("utf-8", "replace").splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("zip error")]
    return f"failed (exit {proc.returncode}: {(errors or lines or ['no output'])[-1]})"
