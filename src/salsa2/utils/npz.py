"""Uncompressed ``.npz`` files written atomically, entry by entry in row chunks, and read back memory-mapped."""

from __future__ import annotations

import mmap
import zipfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from numpy.lib import format as npy_format

from salsa2.utils.fsutil import atomic_path


class NpzWriter:
    """Writes an uncompressed ``.npz`` entry by entry; an entry may arrive in row chunks (never whole)."""

    def __init__(self, zf: zipfile.ZipFile) -> None:
        self.zf = zf

    def add(self, name: str, array: np.ndarray) -> None:
        array = np.asarray(array)
        self.add_rows(name, array.shape, array.dtype, [array])

    def add_rows(self, name: str, shape: tuple[int, ...], dtype: np.dtype, chunks: Iterable[np.ndarray]) -> None:
        """Entry ``name`` of ``shape``/``dtype`` from C-ordered row chunks whose rows add up to ``shape[0]``."""
        dtype = np.dtype(dtype)
        header = {"descr": npy_format.dtype_to_descr(dtype), "fortran_order": False, "shape": tuple(shape)}
        rows = 0
        with self.zf.open(f"{name}.npy", "w", force_zip64=True) as f:
            npy_format.write_array_header_2_0(f, header)
            for chunk in chunks:
                chunk = np.ascontiguousarray(chunk, dtype=dtype)
                f.write(chunk.tobytes())
                rows += chunk.shape[0] if chunk.ndim else 1
        expected = shape[0] if shape else 1
        if rows != expected:
            raise ValueError(f"npz entry {name}: got {rows} rows, declared {expected}")


class _AtomicNpz:
    """``write_npz``'s context: a zip on a temporary sibling, renamed onto ``path`` only on success."""

    def __init__(self, path: str | Path) -> None:
        self.path = path

    def __enter__(self) -> NpzWriter:
        self._ctx = atomic_path(self.path)
        tmp = self._ctx.__enter__()
        self._zf = zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED, allowZip64=True)
        return NpzWriter(self._zf)

    def __exit__(self, *exc: object) -> None:
        self._zf.close()
        self._ctx.__exit__(*exc)


def write_npz(path: str | Path) -> _AtomicNpz:
    """``with write_npz(path) as w: w.add(...)``; the file appears whole on success, never half-written."""
    return _AtomicNpz(path)


def open_npz(path: str | Path) -> dict[str, np.ndarray]:
    """Every array of an npz; uncompressed numeric entries come back as read-only memory maps."""
    path = Path(path)
    out: dict[str, np.ndarray] = {}
    with zipfile.ZipFile(path) as zf, open(path, "rb") as raw:
        for info in zf.infolist():
            name = info.filename.removesuffix(".npy")
            if info.compress_type != zipfile.ZIP_STORED:
                with zf.open(info) as f:
                    out[name] = np.load(f, allow_pickle=False)
                continue
            raw.seek(info.header_offset)
            local = raw.read(30)
            start = info.header_offset + 30 + int.from_bytes(local[26:28], "little") + int.from_bytes(
                local[28:30], "little")
            raw.seek(start)
            version = npy_format.read_magic(raw)
            read_header = {(1, 0): npy_format.read_array_header_1_0, (2, 0): npy_format.read_array_header_2_0}
            if version not in read_header:
                raise ValueError(f"{path}: entry {name} has .npy format {version}; rewrite the file")
            shape, fortran, dtype = read_header[version](raw)
            if dtype.kind in "OV" or not shape or int(np.prod(shape)) == 0:
                with zf.open(info) as f:
                    out[name] = np.load(f, allow_pickle=False)
            else:
                out[name] = np.memmap(path, dtype=dtype, mode="r", offset=raw.tell(), shape=shape,
                                      order="F" if fortran else "C")
    return out


def release_pages(array: np.ndarray) -> None:
    """Unmap the pages a memory-mapped array has touched (they stay in the page cache; RSS drops)."""
    base = getattr(array, "_mmap", None)
    if isinstance(base, mmap.mmap) and hasattr(mmap, "MADV_DONTNEED"):
        base.madvise(mmap.MADV_DONTNEED)
