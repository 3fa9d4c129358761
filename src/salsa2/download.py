"""Resumable HTTP downloads: ``.part`` file + HTTP Range, md5/sha256 check, tqdm progress, atomic rename.

A finished file only ever appears at its final path after its checksum (when one is published) matched; an
interrupted download leaves ``<name>.part`` behind, which the next call resumes with ``Range: bytes=N-``.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

CHUNK = 1 << 20
USER_AGENT = "salsa2-downloader/0.1"


class DownloadError(RuntimeError):
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


def file_digest(path: str | Path, algorithm: str) -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


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


def download(
    url: str,
    dest: str | Path,
    *,
    md5: str | None = None,
    sha256: str | None = None,
    timeout: float = 60.0,
    progress: bool = True,
    max_bytes: int | None = None,
) -> Path:
    """Download ``url`` to ``dest`` unless a verified copy is already there; resume a ``.part`` if present.

    ``max_bytes`` stops after that many bytes of this call (leaving the ``.part``; used to test resuming).
    Raises:
        DownloadError: the server cannot be reached or answers with an error.
        ChecksumError: the finished file does not match ``md5``/``sha256``; the partial file is deleted.
    """
    dest = Path(dest)
    if dest.exists():
        try:
            verify(dest, md5=md5, sha256=sha256)
            return dest
        except ChecksumError:
            dest.unlink()  # a stale or damaged copy: fetch it again
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    if have:
        request.add_header("Range", f"bytes={have}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as err:
        if err.code == 416 and have:  # the .part is already complete
            response = None
        else:
            raise DownloadError(f"{url}: HTTP {err.code} {err.reason} (while fetching {dest})") from None
    except (urllib.error.URLError, OSError) as err:
        raise DownloadError(
            f"{url}: cannot connect ({getattr(err, 'reason', err)}). Check the network, or download the file by "
            f"hand and place it at {dest}"
        ) from None
    if response is not None:
        with response:
            resumed = response.status == 206
            if not resumed:
                have = 0  # the server ignored Range: start over
            length = response.headers.get("Content-Length")
            total = have + int(length) if length is not None else None
            written = 0
            with open(part, "ab" if resumed else "wb") as out, tqdm(
                total=total, initial=have, unit="B", unit_scale=True, desc=dest.name, disable=not progress,
                leave=False,
            ) as bar:
                while True:
                    try:
                        block = response.read(CHUNK if max_bytes is None else min(CHUNK, max_bytes - written))
                    except (http.client.HTTPException, OSError) as err:
                        raise DownloadError(
                            f"{url}: transfer broke off ({err!r}); run again to resume from {part}"
                        ) from None
                    if not block:
                        break
                    out.write(block)
                    written += len(block)
                    bar.update(len(block))
                    if max_bytes is not None and written >= max_bytes:
                        raise DownloadError(f"{url}: stopped after {written} bytes (max_bytes); {part} kept")
            if total is not None and part.stat().st_size != total:
                raise DownloadError(
                    f"{url}: connection closed after {part.stat().st_size} of {total} bytes; run again to resume "
                    f"from {part}"
                )
    try:
        verify(part, md5=md5, sha256=sha256)
    except ChecksumError as err:
        part.unlink(missing_ok=True)
        raise ChecksumError(str(err).replace(str(part), f"{dest} (from {url})")) from None
    os.replace(part, dest)
    return dest


def fetch(remote: Remote, directory: str | Path, **kwargs) -> Path:
    """``download`` a ``Remote`` into ``directory`` under its published file name."""
    return download(remote.url, Path(directory) / remote.fname, md5=remote.md5, sha256=remote.sha256, **kwargs)
