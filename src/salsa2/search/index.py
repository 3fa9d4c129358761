"""A searchable index of a sound library: one Parquet file of audio embeddings from one or more trained models.

Layout of the file (one row per readable audio file under the indexed directory)::

    path        str      relative to the indexed root (POSIX separators)
    duration    float64  seconds
    size        int64    bytes   } change detection: a file whose size and modification time are both
    mtime_ns    int64    ns      } unchanged is not decoded again
    emb/<name>  fixed_size_list<float32>[D]  L2-normalised audio embedding of model <name>

and, in the Parquet key-value metadata under ``salsa2.search.index``, JSON with ``root``, the models
(``{name: {path, id, embed_dim, info}}``: ``id`` is a hash of the checkpoint, so a retrained model is
re-embedded), the settings, and the files that could not be used (``rejects``: path, size, mtime_ns, reason,
detail; unchanged rejects are not retried).
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from salsa2.audio.decode import PYAV_EXTENSIONS, SNDFILE_EXTENSIONS, AudioReadError
from salsa2.utils.errors import UserError
from salsa2.audio.frontends import FrontendConfig, LogMel
from salsa2.utils.fsutil import atomic_path
from salsa2.search.inference import MEL_DTYPE, SearchModel, embed_mels, load_model
from salsa2.audio.logmel_stream import load_logmel

log = logging.getLogger(__name__)

FORMAT = 1
META_KEY = b"salsa2.index"
EMB_PREFIX = "emb/"
AUDIO_EXTENSIONS = SNDFILE_EXTENSIONS + PYAV_EXTENSIONS  # PyAV's are listed as rejects when it is not installed
REJECT_COLUMNS = ["path", "size", "mtime_ns", "reason", "detail"]


class IndexFileError(UserError, ValueError):
    """An index file that cannot be used (not an index, wrong format, models missing)."""


@dataclass
class Index:
    """An index in memory. ``files`` (path, duration, size, mtime_ns) rows align with each ``embeddings[name]``."""

    root: Path
    files: pd.DataFrame
    embeddings: dict[str, np.ndarray]
    models: dict[str, dict]
    rejects: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=REJECT_COLUMNS))
    settings: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.files)

    def full_path(self, i: int) -> str:
        return str(self.root / self.files["path"].iat[i])

    def position(self, path: str | Path) -> int | None:
        """Row of the file at ``path`` (resolved against the current directory), or None if not indexed."""
        try:
            rel = Path(path).resolve().relative_to(self.root).as_posix()
        except ValueError:
            return None
        hits = np.flatnonzero(self.files["path"].to_numpy() == rel)
        return int(hits[0]) if len(hits) else None


@dataclass
class IndexReport:
    """What one ``build_index`` run did."""

    total: int
    new: int
    changed: int
    unchanged: int
    removed: int
    embedded: dict[str, int]
    rejects: pd.DataFrame
    seconds: float

    def summary(self) -> str:
        emb = ", ".join(f"{k}: {v}" for k, v in self.embedded.items())
        return (f"{self.total} files indexed ({self.new} new, {self.changed} changed, {self.unchanged} unchanged, "
                f"{self.removed} removed); embedded [{emb}]; {len(self.rejects)} unreadable; {self.seconds:.1f} s")


# ------------------------------------------------------------------------------------------------ file IO
def read_index(path: str | Path) -> Index:
    """Load an index written by ``build_index``."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such index; create it with `salsa2 index DIR --model CHECKPOINT`")
    try:
        table = pq.read_table(path)
    except Exception as err:  # pyarrow raises several types for a non-Parquet file
        raise IndexFileError(f"{path}: not a Parquet file ({err}); give an index written by `salsa2 index`") from err
    raw = (table.schema.metadata or {}).get(META_KEY)
    if raw is None:
        raise IndexFileError(f"{path}: a Parquet file without salsa2 index metadata; give an index written by "
                          "`salsa2 index`")
    try:
        meta = json.loads(raw)
        if not isinstance(meta, dict):
            raise TypeError(f"metadata is a {type(meta).__name__}, not a mapping")
    except (ValueError, TypeError) as err:
        raise IndexFileError(f"{path}: broken salsa2 index metadata ({err}); re-create it with "
                             "`salsa2 index DIR --model CHECKPOINT --full`") from None
    if meta.get("format") != FORMAT:
        raise IndexFileError(f"{path}: index format {meta.get('format')} is not {FORMAT}; re-create it with "
                          "`salsa2 index DIR --model ... --full`")
    try:
        files = table.select(["path", "duration", "size", "mtime_ns"]).to_pandas()
        embeddings = {}
        for name, m in meta["models"].items():
            col = table.column(EMB_PREFIX + name).combine_chunks()
            flat = col.flatten().to_numpy(zero_copy_only=False) if len(col) else np.zeros(0, np.float32)
            embeddings[name] = np.ascontiguousarray(flat, dtype=np.float32).reshape(len(col), int(m["embed_dim"]))
        rejects = pd.DataFrame(meta.get("rejects", []), columns=REJECT_COLUMNS)
        return Index(Path(meta["root"]), files, embeddings, meta["models"], rejects, meta.get("settings", {}))
    except (KeyError, TypeError, ValueError, AttributeError, pa.ArrowException) as err:
        raise IndexFileError(f"{path}: broken salsa2 index ({type(err).__name__}: {err}); re-create it with "
                             "`salsa2 index DIR --model CHECKPOINT --full`") from None


def write_index(index: Index, path: str | Path) -> None:
    """Write ``index`` atomically (the old file stays intact until the new one is complete)."""
    cols: dict[str, pa.Array] = {
        "path": pa.array(index.files["path"].astype(str).tolist(), pa.string()),
        "duration": pa.array(index.files["duration"].to_numpy(np.float64), pa.float64()),
        "size": pa.array(index.files["size"].to_numpy(np.int64), pa.int64()),
        "mtime_ns": pa.array(index.files["mtime_ns"].to_numpy(np.int64), pa.int64()),
    }
    for name, emb in index.embeddings.items():
        values = pa.array(np.ascontiguousarray(emb, np.float32).reshape(-1), pa.float32())
        cols[EMB_PREFIX + name] = pa.FixedSizeListArray.from_arrays(values, emb.shape[1])
    meta = {"format": FORMAT, "root": str(index.root), "models": index.models, "settings": index.settings,
            "rejects": index.rejects[REJECT_COLUMNS].to_dict("records")}
    table = pa.table(cols).replace_schema_metadata({META_KEY: json.dumps(meta, default=_json_default)})
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


def _json_default(obj: object) -> object:
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"not JSON-serialisable: {type(obj).__name__}")


# ----------------------------------------------------------------------------------------------- scanning
def scan(root: str | Path, extensions: Sequence[str] = AUDIO_EXTENSIONS) -> pd.DataFrame:
    """Audio files under ``root`` by extension (case-insensitive), hidden files and folders skipped.

    Returns a frame (path relative to root, size, mtime_ns) sorted by path.
    """
    root = Path(root)
    exts = {e.lower() if e.startswith(".") else f".{e.lower()}" for e in extensions}
    rows = []
    for dirpath, dirnames, filenames in os.walk(root):  # linked folders are not followed (no cycles)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for fn in filenames:
            if fn.startswith(".") or os.path.splitext(fn)[1].lower() not in exts:
                continue
            full = Path(dirpath) / fn
            try:
                st = full.stat()
            except OSError:  # a dangling link: reported when read
                st = None
            rows.append({"path": full.relative_to(root).as_posix(), "size": st.st_size if st else -1,
                         "mtime_ns": st.st_mtime_ns if st else -1})
    return pd.DataFrame(rows, columns=["path", "size", "mtime_ns"]).sort_values("path", ignore_index=True)


# ---------------------------------------------------------------------------------------------- indexing
def resolve_models(models: Sequence[SearchModel | str | Path] | dict[str, str | Path]) -> list[SearchModel]:
    """Load checkpoints given as paths (named by their folder) or ``{name: path}``; names must be unique."""
    items = list(models.items()) if isinstance(models, dict) else [(None, m) for m in models]
    out = [m if isinstance(m, SearchModel) else load_model(m, name) for name, m in items]
    names = [m.name for m in out]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"several models are named {dupes}; name them explicitly (--model NAME=PATH)")
    bad = [n for n in names if not n or any(c in n for c in "/\\\n")]
    if bad:
        raise ValueError(f"model names must be non-empty without slashes or newlines, got {bad}")
    return out


def _decode(root: Path, rel: str, frontends: list[FrontendConfig], modules: dict[str, LogMel],
            min_duration: float) -> tuple[float, dict[str, np.ndarray]] | AudioReadError:
    """(duration, {frontend key: log-mel}) of one file, decoded in blocks (memory ~ the log-mels), or the reason."""
    try:
        mels, duration = {}, 0.0
        for cfg in frontends:
            mels[cfg.key()], duration = load_logmel(root / rel, cfg, modules[cfg.key()], min_duration=min_duration,
                                                    dtype=MEL_DTYPE)
        return duration, mels
    except AudioReadError as err:
        return err
    except MemoryError:
        return AudioReadError(root / rel, "too_large", "not enough memory for the log-mel of the whole file")


def _windows(items: list, size: int) -> Iterator[list]:
    for s in range(0, len(items), size):
        yield items[s : s + size]


def _read_old_index(out: Path, *, full: bool, need_models: bool) -> Index | None:
    """The existing index at ``out`` to update, or None. An unreadable one does not block re-indexing: it is
    rebuilt (with a warning) whenever the models are given; without models it is a one-line error."""
    if not out.exists():
        return None
    try:
        return read_index(out)
    except Exception as err:  # noqa: BLE001 - a damaged Parquet file raises many types; the message is shown
        reason = (str(err).splitlines() or [type(err).__name__])[0]
        if need_models:
            raise IndexFileError(f"{out}: the existing index cannot be read ({reason}); re-create it with "
                                 "`salsa2 index DIR --model CHECKPOINT --full`") from None
        log.warning("%s cannot be read (%s): %s", out, reason,
                    "rebuilding it (--full)" if full else "building the index afresh")
        return None


def build_index(
    root: str | Path,
    out: str | Path,
    models: Sequence[SearchModel | str | Path] | dict[str, str | Path] | None = None,
    *,
    min_duration: float = 0.1,
    extensions: Sequence[str] = AUDIO_EXTENSIONS,
    batch_size: int = 16,
    workers: int = 2,
    full: bool = False,
    progress: bool = True,
) -> IndexReport:
    """Index (or update the index of) every audio file under ``root`` into ``out``.

    Args:
        root: the sound library.
        out: the index file (Parquet); when it exists, unchanged files keep their embeddings.
        models: checkpoints (paths, ``{name: path}`` or loaded ``SearchModel``s); None = the models of the
            existing index.
        min_duration: shorter files are rejected (``too_short``).
        extensions: which files are audio.
        batch_size: clips per encoder call.
        workers: decoding threads.
        full: ignore the existing index and embed everything again.
        progress: show a tqdm bar.
    """
    start = time.time()
    root = Path(root).resolve()
    if not root.is_dir():
        raise NotADirectoryError(f"{root}: not a directory; give the folder of the sound library to index")
    out = Path(out)
    old = _read_old_index(out, full=full, need_models=models is None)
    settings = {"min_duration": float(min_duration), "extensions": sorted(extensions)}
    if old is not None and not full:
        if old.root != root:
            log.warning("%s indexed %s, not %s: starting afresh", out, old.root, root)
            old = None
        elif old.settings != settings:
            log.warning("%s was made with other settings (%s): starting afresh", out, old.settings)
            old = None
    if models is None:
        if old is None:
            raise ValueError("no models given and no existing index to take them from; pass --model CHECKPOINT")
        models = {name: m["path"] for name, m in old.models.items()}
    loaded = resolve_models(models)

    files = scan(root, extensions)
    n = len(files)
    keys = list(zip(files["size"].tolist(), files["mtime_ns"].tolist()))
    old_row: dict[str, int] = {}
    old_keys: dict[str, tuple[int, int]] = {}
    old_rejects: dict[str, dict] = {}
    reusable: set[str] = set()
    if old is not None and not full:
        old_row = {p: i for i, p in enumerate(old.files["path"].tolist())}
        old_keys = dict(zip(old.files["path"], zip(old.files["size"].tolist(), old.files["mtime_ns"].tolist())))
        old_rejects = {r["path"]: r for r in old.rejects.to_dict("records")}
        reusable = {m.name for m in loaded if m.name in old.models and old.models[m.name]["id"] == m.model_id}
    embeddings = {m.name: np.zeros((n, m.embed_dim), np.float32) for m in loaded}
    durations = np.zeros(n, np.float64)
    status = np.array(["new"] * n, dtype=object)
    rejects: list[dict] = []
    todo: list[tuple[int, list[SearchModel]]] = []
    for i, (rel, key) in enumerate(zip(files["path"].tolist(), keys)):
        if rel in old_rejects and (old_rejects[rel]["size"], old_rejects[rel]["mtime_ns"]) == key:
            rejects.append(old_rejects[rel])
            status[i] = "rejected"
            continue
        if rel in old_keys:
            if old_keys[rel] == key:
                status[i] = "unchanged"
                j = old_row[rel]
                durations[i] = old.files["duration"].iat[j]  # type: ignore[union-attr]
                for name in reusable:
                    embeddings[name][i] = old.embeddings[name][j]  # type: ignore[union-attr]
                need = [m for m in loaded if m.name not in reusable]
                if need:
                    todo.append((i, need))
                continue
            status[i] = "changed"
        todo.append((i, list(loaded)))

    modules = {m.frontend.key(): LogMel(m.frontend) for m in loaded}
    embedded = {m.name: 0 for m in loaded}
    paths = files["path"].tolist()

    def reject(i: int, err: AudioReadError) -> None:
        rejects.append({"path": paths[i], "size": keys[i][0], "mtime_ns": keys[i][1], "reason": err.reason,
                        "detail": err.detail})
        status[i] = "rejected"

    def decode(item: tuple[int, list[SearchModel]]) -> tuple[float, dict[str, np.ndarray]] | AudioReadError:
        wanted = list({m.frontend.key(): m.frontend for m in item[1]}.values())
        return _decode(root, paths[item[0]], wanted, modules, min_duration)

    bar = tqdm(total=len(todo), desc=f"index {root.name}", unit="file", disable=not progress)
    with ThreadPoolExecutor(max(1, workers)) as pool:
        for window in _windows(todo, max(1, batch_size) * 4):
            per_model: dict[str, list[tuple[int, np.ndarray]]] = {m.name: [] for m in loaded}
            for (i, need), result in zip(window, pool.map(decode, window)):
                if isinstance(result, AudioReadError):
                    reject(i, result)
                    continue
                durations[i], mels = result
                for m in need:
                    per_model[m.name].append((i, mels[m.frontend.key()]))
            for m in loaded:
                items = [(i, x) for i, x in per_model[m.name] if status[i] != "rejected"]
                if items:
                    emb = embed_mels(m, [x for _, x in items], batch_size)
                    for (i, _), ok in zip(items, np.isfinite(emb).all(axis=1)):
                        if not ok:
                            reject(i, AudioReadError(root / paths[i], "non_finite",
                                                     f"model {m.name} gives a NaN/inf embedding"))
                    embeddings[m.name][[i for i, _ in items]] = emb
                    embedded[m.name] += len(items)
            bar.update(len(window))
    bar.close()

    keep = status != "rejected"
    table = files.loc[keep, ["path"]].assign(duration=durations[keep], size=files["size"][keep],
                                             mtime_ns=files["mtime_ns"][keep]).reset_index(drop=True)
    reject_df = pd.DataFrame(rejects, columns=REJECT_COLUMNS).sort_values("path", ignore_index=True)
    index = Index(root, table, {k: v[keep] for k, v in embeddings.items()},
                  {m.name: m.describe() for m in loaded}, reject_df, settings)
    write_index(index, out)
    present = set(paths)
    removed = 0 if old is None or full else sum(p not in present for p in list(old_keys) + list(old_rejects))
    counts = {s: int((status == s).sum()) for s in ("new", "changed", "unchanged")}
    return IndexReport(total=int(keep.sum()), new=counts["new"], changed=counts["changed"],
                       unchanged=counts["unchanged"], removed=removed, embedded=embedded, rejects=reject_df,
                       seconds=time.time() - start)
