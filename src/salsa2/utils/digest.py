"""Content digests of files: the one place salsa2 hashes what is on disk.

Every digest salsa2 writes (download records, shard manifests, resume keys, pretrained-weights records) or checks
(published checksums) comes from here. A digest depends only on the bytes (and, for a tree, the relative paths),
never on the chunk size used to read them, a file's location or its mtime.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

CHUNK = 1 << 20


def file_digest(path: str | Path, algorithm: str = "sha256", chunk: int = CHUNK) -> str:
    """Hex digest of a file's contents; ``algorithm`` is a ``hashlib`` name (``sha256``, ``md5``, ...)."""
    digest = hashlib.new(algorithm)
    _feed(digest, path, chunk)
    return digest.hexdigest()


def files_digest(paths: list[str | Path], algorithm: str = "sha256") -> str:
    """Hex digest of the files' contents one after the other (no separator), in the order given."""
    digest = hashlib.new(algorithm)
    for path in paths:
        _feed(digest, path)
    return digest.hexdigest()


def tree_digest(root: str | Path, pattern: str = "*", algorithm: str = "sha256") -> str:
    """Hex digest of the files under ``root`` matching ``pattern``: each one's relative path and contents, in
    path order (a renamed, added, removed or edited file changes it)."""
    root = Path(root)
    digest = hashlib.new(algorithm)
    for path in sorted(p for p in root.rglob(pattern) if p.is_file()):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        _feed(digest, path)
        digest.update(b"\0")
    return digest.hexdigest()


def _feed(digest: hashlib._Hash, path: str | Path, chunk: int = CHUNK) -> None:
    """Update ``digest`` with a file's bytes, ``chunk`` at a time."""
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
