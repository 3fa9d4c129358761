"""Resumable HTTP downloads: ``.part`` file + HTTP Range, md5/sha256/size check, tqdm progress, atomic rename.

A finished file only ever appears at its final path after its checksum (when one is published) matched; an
interrupted download leaves ``<name>.part`` behind, which the next call resumes with ``Range: bytes=N-``. A reply
that does not continue the ``.part`` (416 with another length, a 206 from another offset, more bytes than stated)
discards it and starts from byte 0. Files without a published checksum get a trust-on-first-use record
``.<name>.sha256`` (docs/reliability.md), written only after the file passed ``check`` (an archive: its members
listed), so a truncated archive is never trusted.
"""

from __future__ import annotations

import http.client
import logging
import os
import re
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from salsa2.utils.digest import file_digest
from salsa2.utils.errors import UserError
from salsa2.utils.fsutil import atomic_path

CHUNK = 1 << 20
USER_AGENT = "salsa2-downloader/0.1"
log = logging.getLogger(__name__)


class DownloadError(UserError, RuntimeError):
    """A file that could not be fetched; the message names the URL, the target and the fix."""


class ChecksumError(DownloadError):
    """A downloaded file whose digest differs from the published one (the bad file is removed)."""


@dataclass(frozen=True)
class Remote:
    """One published file: its name on disk, URL and (where published) its md5 or sha256."""

    fname: str
    url: str
    md5: str | None = None
    sha256: str | None = None
    size: int | None = None


def verify(path: str | Path, *, md5: str | None = None, sha256: str | None = None) -> None:
    """Raise ``ChecksumError`` when ``path`` does not have the given digest (no digest given: no check)."""
    for algorithm, expected in (("sha256", sha256), ("md5", md5)):
        if expected:
            got = file_digest(path, algorithm)
            if got.lower() != expected.lower():
                raise ChecksumError(
                    f"{path}: {algorithm} is {got}, the publisher lists {expected}; the file is corrupt or was "
                    "changed upstream. It has been removed; run the stage again to download it anew"
                )
            return


class _Restart(Exception):
    """The server's reply does not continue the ``.part``: discard it and fetch from byte 0."""


def _content_range(value: str | None) -> tuple[int | None, int | None]:
    """(first byte, total length) of a ``Content-Range`` header (``bytes S-E/T`` or ``bytes */T``); None if absent."""
    m = re.fullmatch(r"\s*bytes\s+(?:(\d+)-\d+|\*)/(\d+|\*)\s*", value or "")
    if not m:
        return None, None
    return (int(m.group(1)) if m.group(1) else None), (int(m.group(2)) if m.group(2) != "*" else None)


def record_path(dest: str | Path) -> Path:
    """The trust-on-first-use record ``.<name>.sha256`` (``<sha256> <size>``) next to a file without a published
    checksum."""
    dest = Path(dest)
    return dest.with_name(f".{dest.name}.sha256")


def read_record(dest: str | Path) -> tuple[str, int] | None:
    rec = record_path(dest)
    try:
        digest, size = rec.read_text().split()[:2]
        return digest, int(size)
    except (OSError, ValueError):
        return None


def write_record(dest: str | Path) -> None:
    with atomic_path(record_path(dest)) as tmp:
        tmp.write_text(f"{file_digest(dest, 'sha256')} {Path(dest).stat().st_size}\n")


def _check_size(path: Path, size: int | None, what: str) -> None:
    if size is not None and path.stat().st_size != size:
        raise ChecksumError(f"{path}: {path.stat().st_size} bytes, {what} says {size}; the file is corrupt or was "
                            "changed upstream. It has been removed; run the stage again to download it anew")


def download(
    url: str,
    dest: str | Path,
    *,
    md5: str | None = None,
    sha256: str | None = None,
    size: int | None = None,
    record: bool = False,
    timeout: float = 60.0,
    progress: bool = True,
    max_bytes: int | None = None,
    refuse_html: bool = False,
    check: Callable[[Path], object] | None = None,
) -> Path:
    """Download ``url`` to ``dest`` unless a verified copy is already there; resume a ``.part`` if present.

    A resumed reply must continue the ``.part`` (``Content-Range`` starting at its length) and a finished file
    must have the length the server stated (and ``size`` if given), else the ``.part`` is discarded and the file
    fetched from byte 0. ``record`` (no published checksum): the sha256 and size of the first complete download
    are kept in ``.<name>.sha256`` and every later copy must match them.
    ``max_bytes`` stops after that many bytes of this call (leaving the ``.part``; used to test resuming).
    ``refuse_html``: a reply of type ``text/html`` (a sign-in, quota or error page) is an error, not the file.
    ``check(path)`` (files without a published checksum, e.g. ``salsa2.data.archive.list_members``) must pass
    before the file is kept and recorded; a file it refuses is deleted (``DownloadError``, nothing recorded).
    Raises:
        DownloadError: the server cannot be reached or answers with an error.
        ChecksumError: the finished file does not match ``md5``/``sha256``/``size``/the record; it is deleted.
    """
    dest = Path(dest)
    recorded = read_record(dest) if record and not (md5 or sha256) else None
    if recorded is not None:
        sha256, size = recorded
    if dest.exists():
        try:
            _check_size(dest, size, "the record")
            verify(dest, md5=md5, sha256=sha256)
            if record and not (md5 or sha256):
                if recorded is None and check is not None:
                    _check_whole(dest, url, check)
                write_record(dest)  # a copy placed by hand before records existed: trusted, from now on checked
            return dest
        except (ChecksumError, _Damaged):
            dest.unlink(missing_ok=True)  # a stale or damaged copy: fetch it again
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    for attempt in range(2):
        have = part.stat().st_size if part.exists() else 0
        try:
            _fetch_part(url, dest, part, have, size, timeout, progress, max_bytes, refuse_html,
                        record_path(dest) if recorded else None)
            break
        except _Restart as why:
            log.warning("%s: %s; discarding %s and downloading from the start", url, why, part)
            part.unlink(missing_ok=True)
            if attempt:
                raise DownloadError(f"{url}: {why} (while fetching {dest}); the server is unreliable, try later or "
                                    f"download the file by hand and place it at {dest}") from None
    try:
        _check_size(part, size, "the record" if recorded else "the publisher")
        verify(part, md5=md5, sha256=sha256)
    except ChecksumError as err:
        part.unlink(missing_ok=True)
        msg = str(err).replace(str(part), f"{dest} (from {url})")
        if recorded is not None:
            msg += f"; it differs from the first download recorded in {record_path(dest)} (delete that record to " \
                   "accept the new upstream file)"
        raise ChecksumError(msg) from None
    os.replace(part, dest)
    if check is not None and not (md5 or sha256):
        try:
            _check_whole(dest, url, check)
        except _Damaged as err:
            dest.unlink(missing_ok=True)
            raise DownloadError(f"{err}; it was deleted and nothing was recorded: run again to download it anew, or "
                                f"place a whole copy at {dest}") from None
    if record and recorded is None and not (md5 or sha256):
        write_record(dest)
    return dest


class _Damaged(Exception):
    """A downloaded file without a published checksum that its ``check`` refused."""


def _check_whole(dest: Path, url: str, check: Callable[[Path], object]) -> None:
    """Run ``check(dest)``; ``_Damaged`` naming the file, the URL and the reason when it refuses the file."""
    try:
        check(dest)
    except Exception as err:  # noqa: BLE001 - any refusal of the check (py7zr raises its own types) means damaged
        reason = " ".join(str(err).split()).removeprefix(f"{dest}: ").split("; ")[0] or type(err).__name__
        raise _Damaged(f"{dest} (from {url}) is not whole: {reason}") from None


def _fetch_part(url: str, dest: Path, part: Path, have: int, size: int | None, timeout: float, progress: bool,
                max_bytes: int | None, refuse_html: bool = False, record: Path | None = None) -> None:
    """Append the rest of ``url`` to ``part`` (which holds ``have`` bytes); ``_Restart`` when it cannot continue.
    ``record``: the trust-on-first-use record ``size`` comes from (None: the publisher's size)."""
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    if have:
        request.add_header("Range", f"bytes={have}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as err:
        if err.code == 416 and have:  # nothing after byte `have`: complete only if the server says so
            _, total = _content_range(err.headers.get("Content-Range"))
            if total is not None and total == have and (size is None or size == have):
                return
            raise _Restart(f"HTTP 416 for a {have}-byte .part of a {total if total is not None else 'unknown'}-byte "
                           "file") from None
        raise DownloadError(f"{url}: HTTP {err.code} {err.reason} (while fetching {dest})") from None
    except (urllib.error.URLError, OSError) as err:
        raise DownloadError(
            f"{url}: cannot connect ({getattr(err, 'reason', err)}). Check the network, or download the file by "
            f"hand and place it at {dest}"
        ) from None
    with response:
        if refuse_html and "text/html" in (response.headers.get("Content-Type") or ""):
            raise DownloadError(f"{url} answered with a web page, not the file {dest.name} (a sign-in, quota or "
                                "error page)")
        length = response.headers.get("Content-Length")
        length = int(length) if length is not None and length.isdigit() else None
        if response.status == 206:
            first, total = _content_range(response.headers.get("Content-Range"))
            if first != have:
                raise _Restart(f"asked for bytes from {have}, the server sent a range from {first}")
            if total is None and length is not None:
                total = have + length
        else:
            have = 0  # the server ignored Range: start over
            total = length
        if size is not None and total is not None and total != size:
            if record is not None:
                raise ChecksumError(f"{url}: the server offers {total} bytes, the first download recorded in {record} "
                                    f"had {size} (while fetching {dest}); the file was changed upstream: delete that "
                                    "record to accept the new upstream file")
            raise DownloadError(f"{url}: the server offers {total} bytes, the publisher lists {size} (while fetching "
                                f"{dest}); the file was changed upstream or the address is wrong")
        written = 0
        with open(part, "ab" if have else "wb") as out, tqdm(
            total=total, initial=have, unit="B", unit_scale=True, desc=dest.name, disable=not progress, leave=False,
        ) as bar:
            while True:
                try:
                    block = response.read(CHUNK if max_bytes is None else min(CHUNK, max_bytes - written))
                except (http.client.HTTPException, OSError) as err:
                    raise DownloadError(
                        f"{url}: transfer broke off ({err!r}); run again to resume from {part}") from None
                if not block:
                    break
                out.write(block)
                written += len(block)
                bar.update(len(block))
                if max_bytes is not None and written >= max_bytes:
                    raise DownloadError(f"{url}: stopped after {written} bytes (max_bytes); {part} kept")
        got = part.stat().st_size
        if total is not None and got > total:
            raise _Restart(f"received {got} bytes, more than the {total} the server stated")
        if total is not None and got != total:
            raise DownloadError(
                f"{url}: connection closed after {got} of {total} bytes; run again to resume from {part}")


def fetch(remote: Remote, directory: str | Path, **kwargs) -> Path:
    """``download`` a ``Remote`` into ``directory`` under its published file name; without a published checksum
    the first complete download's sha256 and size are recorded and later copies checked against them."""
    kwargs.setdefault("record", not (remote.md5 or remote.sha256))
    return download(remote.url, Path(directory) / remote.fname, md5=remote.md5, sha256=remote.sha256,
                    size=remote.size, **kwargs)
