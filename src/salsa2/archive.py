"""Safe extraction of the archives datasets are published in (zip, 7z, tar[.gz|.bz2|.xz]).

Every member is checked before anything is written: an absolute path, a ``..`` component, or a link whose
target leaves the destination is refused with ``UnsafeArchiveError`` naming the archive and the member. The
destination directory appears atomically (``fsutil.atomic_dir``): whole, or not at all.
"""

from __future__ import annotations

import posixpath
import shutil
import stat
import tarfile
import zipfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath

from tqdm import tqdm

from salsa2.fsutil import atomic_dir


class ArchiveError(RuntimeError):
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


def extract(
    archive: str | Path,
    dest: str | Path,
    *,
    keep: Callable[[str], bool] | None = None,
    progress: bool = True,
) -> Path:
    """Extract ``archive`` into ``dest`` (created atomically; an existing ``dest`` is replaced).

    ``keep(member_name) -> bool`` selects members (default: all). All members are checked first, so a
    malicious member fails the whole extraction before any file is written.
    """
    archive, dest = Path(archive), Path(dest)
    fmt = archive_format(archive)
    try:
        with atomic_dir(dest) as tmp:
            if fmt == "zip":
                with zipfile.ZipFile(archive) as zf:
                    members = [m for m in _zip_members(archive, zf) if keep is None or keep(m.filename)]
                    for m in tqdm(members, desc=f"extract {archive.name}", unit="file", disable=not progress):
                        zf.extract(m, tmp)
            elif fmt == "tar":
                with tarfile.open(archive) as tf:
                    members = [m for m in _tar_members(archive, tf) if keep is None or keep(m.name)]
                    tf.extractall(tmp, members=members, filter="data")
            else:
                import py7zr

                with py7zr.SevenZipFile(archive) as sz:
                    names = [i.filename for i in _7z_members(archive, sz) if keep is None or keep(i.filename)]
                    sz.reset()
                    sz.extract(path=tmp, targets=names)
    except (zipfile.BadZipFile, tarfile.TarError, EOFError) as err:
        raise ArchiveError(f"{archive}: cannot read archive ({err}); delete it and download it again") from None
    except Exception as err:
        if type(err).__module__.startswith("py7zr"):
            raise ArchiveError(f"{archive}: cannot read 7z archive ({err}); delete it and download it again") from None
        raise
    return dest


def extract_to(
    archive: str | Path, target: str | Path, *, inner: str = "", keep: Callable[[str], bool] | None = None
) -> Path:
    """Extract ``archive`` so that its folder ``inner`` (or its root) becomes ``target``, atomically."""
    target = Path(target)
    staging = extract(archive, target.with_name(f".{target.name}.extract"), keep=keep)
    source = staging / inner if inner and (staging / inner).is_dir() else staging
    if target.exists():
        raise ArchiveError(f"{target} already exists; remove it to extract {archive} again")
    source.rename(target)
    if source != staging:
        shutil.rmtree(staging)
    return target
