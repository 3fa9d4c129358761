"""Atomic file and directory writes: outputs appear whole or not at all, with the modes the user's umask allows.

Temporary siblings are named ``.<name>.<pid>.<random>.tmp``: a later write of the same output removes those a
killed process left (its pid is gone), and ``.dvcignore`` hides them from DVC meanwhile.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from salsa2.utils.errors import UserError

# errors of writing, not of reading: reported as "cannot write <output>" with the fix
_WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG}
_WRITE_TEXTS = ("No space left", "Read-only file system", "Disk quota exceeded", "File too large")


class OutputError(UserError, OSError):
    """An output that cannot be written (disk full, read-only, no permission); the message names it."""


def _output_error(err: OSError, path: Path, *, creating: bool) -> OSError:
    """``err`` as one line naming the output ``path`` when it is a write failure (any failure while ``creating``
    the temporary sibling); other errors unchanged."""
    text = str(err)
    if not (creating or err.errno in _WRITE_ERRNOS or any(t in text for t in _WRITE_TEXTS)):
        return err
    reason = err.strerror or " ".join(text.split())
    new = OutputError(f"{path}: cannot write it ({reason}); free some space, or choose a place you can write to")
    new.errno = err.errno
    return new


def current_umask() -> int:
    """The process umask (read without changing it where /proc allows, else set and restored at once)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def apply_umask(path: str | Path) -> None:
    """Give ``path`` (and, for a directory, everything below it) the modes a plain ``open``/``mkdir`` would:
    files 0666 & ~umask, directories 0777 & ~umask (mkstemp/mkdtemp create 0600/0700, which must not survive)."""
    mask = current_umask()
    path = Path(path)
    if path.is_symlink():
        return
    if not path.is_dir():
        os.chmod(path, 0o666 & ~mask)
        return
    os.chmod(path, 0o777 & ~mask)
    for dirpath, dirnames, filenames in os.walk(path):
        for d in dirnames:
            if not os.path.islink(os.path.join(dirpath, d)):
                os.chmod(os.path.join(dirpath, d), 0o777 & ~mask)
        for f in filenames:
            p = os.path.join(dirpath, f)
            if not os.path.islink(p) and (os.stat(p).st_mode & 0o777) == 0o600:  # only mkstemp's mode is widened
                os.chmod(p, 0o666 & ~mask)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temps(path: str | Path) -> list[Path]:
    """Remove the ``.<name>.<pid>.*.tmp`` siblings of ``path`` left by processes that no longer run."""
    path = Path(path)
    pattern = re.compile(rf"^\.{re.escape(path.name)}\.(\d+)\.(?:[a-z0-9_]{{8}}(?:\.old)?|extract)\.tmp$")
    removed = []
    if not path.parent.is_dir():
        return removed
    for sibling in path.parent.iterdir():
        m = pattern.match(sibling.name)
        if m and int(m.group(1)) != os.getpid() and not pid_alive(int(m.group(1))):
            if sibling.is_dir() and not sibling.is_symlink():
                shutil.rmtree(sibling, ignore_errors=True)
            else:
                sibling.unlink(missing_ok=True)
            removed.append(sibling)
    return removed


def _prefix(path: Path) -> str:
    return f".{path.name}.{os.getpid()}."


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary sibling path; on success it is renamed onto ``path``, on error removed."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temps(path)
        fd, tmp = tempfile.mkstemp(prefix=_prefix(path), suffix=".tmp", dir=path.parent)
    except OSError as err:
        raise _output_error(err, path, creating=True) from err
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        apply_umask(tmp_path)
        os.replace(tmp_path, path)
    except BaseException as err:
        if tmp_path.is_dir() and not tmp_path.is_symlink():
            shutil.rmtree(tmp_path, ignore_errors=True)
        else:
            tmp_path.unlink(missing_ok=True)
        if isinstance(err, OSError) and not isinstance(err, UserError):
            named = _output_error(err, path, creating=False)
            if named is not err:
                raise named from err
        raise


@contextlib.contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield a temporary sibling directory; on success it replaces ``path`` whole, on error it is removed.

    The old ``path`` is first renamed aside and deleted only after the new one is in place, so a kill at any
    moment leaves either the old or the new folder complete (a multi-file output is replaced as one step)."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temps(path)
        tmp = Path(tempfile.mkdtemp(prefix=_prefix(path), suffix=".tmp", dir=path.parent))
    except OSError as err:
        raise _output_error(err, path, creating=True) from err
    try:
        yield tmp
        apply_umask(tmp)
        old = None
        if path.exists() or path.is_symlink():
            old = Path(tempfile.mkdtemp(prefix=_prefix(path), suffix=".old.tmp", dir=path.parent))
            os.rename(path, old / "x")
        os.rename(tmp, path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException as err:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(err, OSError) and not isinstance(err, UserError):
            named = _output_error(err, path, creating=False)
            if named is not err:
                raise named from err
        raise


def write_json(path: str | Path, obj: object) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=False) + "\n")


def read_json(path: str | Path) -> object:
    return json.loads(Path(path).read_text())
