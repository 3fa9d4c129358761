"""A searchable index of a sound library: one Parquet file of audio embeddings from one or more trained models.

Layout of the file (one row per readable audio file under the indexed directory)::

    path        str      relative to the indexed root (POSIX separators)
    duration    float64  seconds
    size        int64    bytes   } change detection: a file whose size and modification time are both
    mtime_ns    int64    ns      } unchanged is not decoded again
    emb/<name>  fixed_size_list<float32>[D]  L2-normalised audio embedding of model <name>

With windows (``salsa2 index --windows``: each file's sliding windows for moment search,
``salsa2.moments.windows``), each row also holds its file's windows::

    win_start   list<float64>    window starts in seconds   } (file, start, end, embedding) per window;
    win_end     list<float64>    window ends in seconds     } ``settings.windows`` = {window, hop}
    win/<name>  list<fixed_size_list<float32>[D]>  L2-normalised window embeddings of model <name>

and, in the Parquet key-value metadata under ``salsa2.index``, JSON with ``root``, the models
(``{name: {path, id, embed_dim, info}}``: ``id`` is a hash of the checkpoint, so a retrained model is
re-embedded), the settings, and the files that could not be used (``rejects``: path, size, mtime_ns, reason,
detail; unchanged rejects are not retried).
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from salsa2.audio.decode import PYAV_EXTENSIONS, SNDFILE_EXTENSIONS, AudioReadError
from salsa2.audio.decode_pool import DecodePool
from salsa2.utils.errors import UserError
from salsa2.audio.frontends import FrontendConfig, LogMel
from salsa2.utils.fsutil import atomic_path
from salsa2.search.inference import MEL_DTYPE, SearchModel, embed_mels, load_model
from salsa2.audio.logmel_stream import load_logmel
from salsa2.moments.windows import check_window, embed_windows

log = logging.getLogger(__name__)

FORMAT = 1
META_KEY = b"salsa2.index"
EMB_PREFIX = "emb/"
WIN_PREFIX = "win/"
AUDIO_EXTENSIONS = SNDFILE_EXTENSIONS + PYAV_EXTENSIONS  # PyAV's are listed as rejects when it is not installed
REJECT_COLUMNS = ["path", "size", "mtime_ns", "reason", "detail"]


class IndexFileError(UserError, ValueError):
    """An index file that cannot be used (not an index, wrong format, models missing)."""


@dataclass
class WindowTable:
    """Every indexed file's windows, flat: file ``i``'s are rows ``offsets[i]:offsets[i + 1]``.

    Attributes:
        window, hop: the settings in seconds.
        offsets: (n_files + 1,) int64.
        starts, ends: (n_windows,) float64 seconds.
        embeddings: model name -> (n_windows, D) float32.
    """

    window: float
    hop: float
    offsets: np.ndarray
    starts: np.ndarray
    ends: np.ndarray
    embeddings: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(self.starts)

    def file_rows(self) -> np.ndarray:
        """(n_windows,) the file row of each window."""
        return np.repeat(np.arange(len(self.offsets) - 1), np.diff(self.offsets))


@dataclass
class Index:
    """An index in memory. ``files`` (path, duration, size, mtime_ns) rows align with each ``embeddings[name]``."""

    root: Path
    files: pd.DataFrame
    embeddings: dict[str, np.ndarray]
    models: dict[str, dict]
    rejects: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=REJECT_COLUMNS))
    settings: dict = field(default_factory=dict)
    windows: WindowTable | None = None  # with ``settings["windows"]`` (``salsa2 index --windows``)

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
        settings = meta.get("settings", {})
        windows = _read_windows(table, meta["models"], settings["windows"]) if settings.get("windows") else None
        return Index(Path(meta["root"]), files, embeddings, meta["models"], rejects, settings, windows)
    except (KeyError, TypeError, ValueError, AttributeError, pa.ArrowException) as err:
        raise IndexFileError(f"{path}: broken salsa2 index ({type(err).__name__}: {err}); re-create it with "
                             "`salsa2 index DIR --model CHECKPOINT --full`") from None


def check_writable(out: Path) -> None:
    """Fail before anything is decoded when the index file cannot be written at ``out`` (a read-only or full
    disk, a folder in the way): one line naming it."""
    if out.is_dir():
        raise IndexFileError(f"{out}: is a folder; give the index file's name, e.g. --out "
                             f"{out / 'salsa2-index.parquet'}")
    blocked = next((p for p in out.parents if p.exists() and not p.is_dir()), None)
    if blocked is not None:
        raise IndexFileError(f"{out}: cannot write the index there: {blocked} is a file, not a folder; choose "
                             "another --out")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out.parent, prefix=f".{out.name}.{os.getpid()}.", suffix=".probe.tmp"):
            pass
    except OSError as err:
        raise IndexFileError(f"{out}: the index cannot be written there ({err.strerror or err}); choose another "
                             "--out, or make room or permission there") from None


def _read_windows(table: pa.Table, models: dict[str, dict], spec: dict) -> WindowTable:
    """The ``win_*`` list columns as a flat ``WindowTable``."""
    start = table.column("win_start").combine_chunks()
    offsets = start.offsets.to_numpy().astype(np.int64) if len(start) else np.zeros(1, np.int64)
    flat = {c: table.column(c).combine_chunks().flatten() for c in ("win_start", "win_end")}
    embeddings = {}
    for name, m in models.items():
        values = table.column(WIN_PREFIX + name).combine_chunks().flatten().flatten()
        embeddings[name] = np.ascontiguousarray(values.to_numpy(zero_copy_only=False), np.float32).reshape(
            -1, int(m["embed_dim"]))
    return WindowTable(float(spec["window"]), float(spec["hop"]), offsets,
                       flat["win_start"].to_numpy(zero_copy_only=False).astype(np.float64),
                       flat["win_end"].to_numpy(zero_copy_only=False).astype(np.float64), embeddings)


def _window_columns(win: WindowTable) -> dict[str, pa.Array]:
    offsets = pa.array(win.offsets.astype(np.int32), pa.int32())
    cols = {c: pa.ListArray.from_arrays(offsets, pa.array(v, pa.float64()))
            for c, v in (("win_start", win.starts), ("win_end", win.ends))}
    for name, emb in win.embeddings.items():
        values = pa.array(np.ascontiguousarray(emb, np.float32).reshape(-1), pa.float32())
        cols[WIN_PREFIX + name] = pa.ListArray.from_arrays(offsets,
                                                           pa.FixedSizeListArray.from_arrays(values, emb.shape[1]))
    return cols


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
    if index.windows is not None:
        cols.update(_window_columns(index.windows))
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


class _Job(NamedTuple):
    """One file to decode (its row in the scan) and the models that must embed it."""

    row: int
    models: list[SearchModel]


@dataclass
class _Reconciliation:
    """How the scanned files relate to the previous index (by path, size and modification time)."""

    status: np.ndarray  # per scanned file: new, changed, unchanged or rejected (a reject whose file is unchanged)
    old_rows: dict[int, int]  # scanned row -> row of the previous index, for unchanged files
    rejects: list[dict]  # the previous rejects whose files are unchanged (not retried)
    reusable: set[str]  # models whose embeddings in the previous index are current (same checkpoint id)
    removed: int  # files of the previous index (rows and rejects) that are gone


@dataclass
class _Draft:
    """The index under construction: one entry per scanned file, rejected ones dropped by ``_assemble``."""

    root: Path
    files: pd.DataFrame  # path, size, mtime_ns (``scan``)
    status: np.ndarray
    durations: np.ndarray
    embeddings: dict[str, np.ndarray]
    rejects: list[dict]
    window_spec: tuple[float, float] | None = None  # (window, hop) seconds when windows are indexed
    window_bounds: list[tuple[np.ndarray, np.ndarray] | None] = field(default_factory=list)  # per row
    window_embeddings: dict[str, list[np.ndarray | None]] = field(default_factory=dict)  # model -> per row

    def reject(self, row: int, err: AudioReadError) -> None:
        """Drop the file of ``row`` from the index and list it with the reason."""
        self.rejects.append({"path": self.files["path"].iat[row], "size": int(self.files["size"].iat[row]),
                             "mtime_ns": int(self.files["mtime_ns"].iat[row]), "reason": err.reason,
                             "detail": err.detail})
        self.status[row] = "rejected"


def _previous_index(out: Path, root: Path, settings: dict, *, full: bool, need_models: bool) -> Index | None:
    """The existing index at ``out``, or None when there is none or (without ``full``) it indexed another
    folder or used other settings. An unreadable one does not block re-indexing: it is rebuilt (with a warning)
    whenever the models are given; without models it is a one-line error."""
    if not out.exists():
        return None
    try:
        old = read_index(out)
    except Exception as err:  # noqa: BLE001 - a damaged Parquet file raises many types; the message is shown
        reason = (str(err).splitlines() or [type(err).__name__])[0]
        if need_models:
            raise IndexFileError(f"{out}: the existing index cannot be read ({reason}); re-create it with "
                                 "`salsa2 index DIR --model CHECKPOINT --full`") from None
        log.warning("%s cannot be read (%s): %s", out, reason,
                    "rebuilding it (--full)" if full else "building the index afresh")
        return None
    if not full and old.root != root:
        log.warning("%s indexed %s, not %s: starting afresh", out, old.root, root)
        return None
    if not full and old.settings != settings:
        log.warning("%s was made with other settings (%s): starting afresh", out, old.settings)
        return None
    return old


def _models_or_previous(models: Sequence[SearchModel | str | Path] | dict[str, str | Path] | None,
                        old: Index | None) -> list[SearchModel]:
    """``resolve_models(models)``, or when ``models`` is None the models of the ``old`` index."""
    if models is None:
        if old is None:
            raise ValueError("no models given and no existing index to take them from; pass --model CHECKPOINT")
        models = {name: m["path"] for name, m in old.models.items()}
    return resolve_models(models)


def _reconcile(files: pd.DataFrame, old: Index | None, models: list[SearchModel]) -> _Reconciliation:
    """Compare the scanned ``files`` with the ``old`` index (None: every file is new)."""
    status = np.array(["new"] * len(files), dtype=object)
    if old is None:
        return _Reconciliation(status, {}, [], set(), 0)
    paths = files["path"].tolist()
    keys = list(zip(files["size"].tolist(), files["mtime_ns"].tolist()))
    old_row = {p: j for j, p in enumerate(old.files["path"].tolist())}
    old_keys = list(zip(old.files["size"].tolist(), old.files["mtime_ns"].tolist()))
    old_rejects = {r["path"]: r for r in old.rejects.to_dict("records")}
    old_rows: dict[int, int] = {}
    rejects: list[dict] = []
    for i, (rel, key) in enumerate(zip(paths, keys)):
        if rel in old_rejects and (old_rejects[rel]["size"], old_rejects[rel]["mtime_ns"]) == key:
            rejects.append(old_rejects[rel])
            status[i] = "rejected"
        elif rel in old_row:
            if old_keys[old_row[rel]] == key:
                status[i] = "unchanged"
                old_rows[i] = old_row[rel]
            else:
                status[i] = "changed"
    reusable = {m.name for m in models if m.name in old.models and old.models[m.name]["id"] == m.model_id}
    present = set(paths)
    removed = sum(p not in present for p in [*old_row, *old_rejects])
    return _Reconciliation(status, old_rows, rejects, reusable, removed)


def _carry_over(root: Path, files: pd.DataFrame, rec: _Reconciliation, old: Index | None,
                models: list[SearchModel], window_spec: tuple[float, float] | None = None) -> _Draft:
    """The draft index: durations and reusable embeddings (and windows) of unchanged files taken from ``old``,
    the rest zero."""
    n = len(files)
    draft = _Draft(root, files, rec.status.copy(), np.zeros(n, np.float64),
                   {m.name: np.zeros((n, m.embed_dim), np.float32) for m in models}, list(rec.rejects),
                   window_spec, [None] * n, {m.name: [None] * n for m in models} if window_spec else {})
    if old is not None:
        win = old.windows if window_spec else None
        for i, j in rec.old_rows.items():
            draft.durations[i] = old.files["duration"].iat[j]
            for name in rec.reusable:
                draft.embeddings[name][i] = old.embeddings[name][j]
            if win is not None:
                a, b = win.offsets[j], win.offsets[j + 1]
                draft.window_bounds[i] = (win.starts[a:b], win.ends[a:b])
                for name in rec.reusable:
                    draft.window_embeddings[name][i] = win.embeddings[name][a:b]
    return draft


def _plan(rec: _Reconciliation, models: list[SearchModel], batch_size: int) -> list[list[_Job]]:
    """What to decode and embed: new and changed files with every model, unchanged ones with the models whose
    embeddings cannot be reused; in windows of ``4 * batch_size`` files (decoded together, then embedded)."""
    stale = [m for m in models if m.name not in rec.reusable]
    todo = []
    for i, status in enumerate(rec.status):
        if status in ("new", "changed"):
            todo.append(_Job(i, list(models)))
        elif status == "unchanged" and stale:
            todo.append(_Job(i, stale))
    size = max(1, batch_size) * 4
    return [todo[s : s + size] for s in range(0, len(todo), size)]


def _decode(root: Path, rel: str, frontends: list[FrontendConfig], modules: dict[str, LogMel],
            min_duration: float) -> tuple[float, dict[str, np.ndarray]]:
    """(duration, {frontend key: log-mel}) of one file, decoded in blocks (memory ~ the log-mels).

    Raises AudioReadError when the file cannot be used.
    """
    mels, duration = {}, 0.0
    try:
        for cfg in frontends:
            mels[cfg.key()], duration = load_logmel(root / rel, cfg, modules[cfg.key()], min_duration=min_duration,
                                                    dtype=MEL_DTYPE)
    except MemoryError:
        raise AudioReadError(root / rel, "too_large", "not enough memory for the log-mel of the whole file") from None
    return duration, mels


def _embed(draft: _Draft, windows: list[list[_Job]], models: list[SearchModel], *, min_duration: float,
           batch_size: int, workers: int, progress: bool) -> dict[str, int]:
    """Decode and embed the planned files window by window into ``draft``; returns the count each model embedded."""
    modules = {m.frontend.key(): LogMel(m.frontend) for m in models}
    paths = draft.files["path"].tolist()
    embedded = {m.name: 0 for m in models}

    def decode(job: _Job) -> tuple[float, dict[str, np.ndarray]]:
        frontends = list({m.frontend.key(): m.frontend for m in job.models}.values())
        return _decode(draft.root, paths[job.row], frontends, modules, min_duration)

    total = sum(len(w) for w in windows)
    with tqdm(total=total, desc=f"index {draft.root.name}", unit="file", disable=not progress) as bar, \
            DecodePool(decode, workers) as pool:
        for window in windows:
            mels = _decode_window(draft, pool, window, models)
            for m in models:
                embedded[m.name] += _embed_model(draft, m, mels[m.name], batch_size)
                if draft.window_spec:
                    _embed_model_windows(draft, m, mels[m.name], batch_size)
            bar.update(len(window))
    return embedded


def _decode_window(draft: _Draft, pool: DecodePool[_Job, tuple[float, dict[str, np.ndarray]]], window: list[_Job],
                   models: list[SearchModel]) -> dict[str, list[tuple[int, np.ndarray]]]:
    """Decode one window: durations recorded, unreadable files rejected; returns each model's (row, log-mel)s."""
    mels: dict[str, list[tuple[int, np.ndarray]]] = {m.name: [] for m in models}
    for job, (duration, by_frontend) in pool.map(window):
        draft.durations[job.row] = duration
        for m in job.models:
            mels[m.name].append((job.row, by_frontend[m.frontend.key()]))
    for job, err in pool.take_rejects():
        draft.reject(job.row, err)
    return mels


def _embed_model(draft: _Draft, model: SearchModel, mels: list[tuple[int, np.ndarray]], batch_size: int) -> int:
    """Embed the (row, log-mel)s not rejected meanwhile into ``draft``; a NaN/inf embedding rejects its file.
    Returns how many were embedded."""
    items = [(i, x) for i, x in mels if draft.status[i] != "rejected"]
    if not items:
        return 0
    emb = embed_mels(model, [x for _, x in items], batch_size)
    for (i, _), ok in zip(items, np.isfinite(emb).all(axis=1)):
        if not ok:
            draft.reject(i, AudioReadError(draft.root / draft.files["path"].iat[i], "non_finite",
                                           f"model {model.name} gives a NaN/inf embedding"))
    draft.embeddings[model.name][[i for i, _ in items]] = emb
    return len(items)


def _embed_model_windows(draft: _Draft, model: SearchModel, mels: list[tuple[int, np.ndarray]],
                         batch_size: int) -> None:
    """Each file's window embeddings (``salsa2.moments.windows``) into ``draft``; NaN/inf rejects the file."""
    for i, mel in mels:
        if draft.status[i] == "rejected":
            continue
        win = embed_windows(model, mel, float(draft.durations[i]), *draft.window_spec, batch_size=batch_size)
        if not np.isfinite(win.emb).all():
            draft.reject(i, AudioReadError(draft.root / draft.files["path"].iat[i], "non_finite",
                                           f"model {model.name} gives a NaN/inf window embedding"))
            continue
        draft.window_bounds[i] = (win.starts, win.ends)
        draft.window_embeddings[model.name][i] = win.emb


def _assemble_windows(draft: _Draft, keep: np.ndarray, models: list[SearchModel]) -> WindowTable:
    rows = np.flatnonzero(keep)
    bounds = [draft.window_bounds[i] for i in rows]
    lengths = np.array([len(b[0]) for b in bounds], np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    cat = lambda parts, shape: np.concatenate(parts) if parts else np.zeros(shape)  # noqa: E731
    return WindowTable(
        draft.window_spec[0], draft.window_spec[1], offsets,
        cat([b[0] for b in bounds], 0).astype(np.float64), cat([b[1] for b in bounds], 0).astype(np.float64),
        {m.name: cat([draft.window_embeddings[m.name][i] for i in rows], (0, m.embed_dim)).astype(np.float32)
         for m in models})


def _assemble(draft: _Draft, models: list[SearchModel], settings: dict) -> Index:
    """The finished index: the files not rejected with their embeddings, and the rejects sorted by path."""
    keep = draft.status != "rejected"
    files = draft.files
    table = files.loc[keep, ["path"]].assign(duration=draft.durations[keep], size=files["size"][keep],
                                             mtime_ns=files["mtime_ns"][keep]).reset_index(drop=True)
    rejects = pd.DataFrame(draft.rejects, columns=REJECT_COLUMNS).sort_values("path", ignore_index=True)
    windows = _assemble_windows(draft, keep, models) if draft.window_spec else None
    return Index(draft.root, table, {k: v[keep] for k, v in draft.embeddings.items()},
                 {m.name: m.describe() for m in models}, rejects, settings, windows)


def _report(draft: _Draft, index: Index, removed: int, embedded: dict[str, int], seconds: float) -> IndexReport:
    """What the run did, from the draft's final status of each scanned file."""
    counts = {s: int((draft.status == s).sum()) for s in ("new", "changed", "unchanged")}
    return IndexReport(total=len(index), new=counts["new"], changed=counts["changed"],
                       unchanged=counts["unchanged"], removed=removed, embedded=embedded, rejects=index.rejects,
                       seconds=seconds)


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
    windows: tuple[float, float] | bool | None = None,
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
        windows: ``(window, hop)`` seconds: also store each file's sliding-window embeddings (moment search);
            False: none; None: as the existing index (none for a new one).
    """
    start = time.time()
    root = Path(root).resolve()
    if not root.is_dir():
        raise NotADirectoryError(f"{root}: not a directory; give the folder of the sound library to index")
    out = Path(out)
    check_writable(out)
    settings = {"min_duration": float(min_duration), "extensions": sorted(extensions)}
    files = scan(root, extensions)
    if files.empty:
        raise UserError(f"{root}: no audio files under it (looked for {' '.join(sorted(extensions))}); give the "
                        "folder of the sound library, or --ext for other file types")
    window_spec = _window_spec(out, windows)
    if window_spec:
        settings["windows"] = {"window": window_spec[0], "hop": window_spec[1]}
    old = _previous_index(out, root, settings, full=full, need_models=models is None)
    loaded = _models_or_previous(models, old)
    base = None if full else old
    rec = _reconcile(files, base, loaded)
    draft = _carry_over(root, files, rec, base, loaded, window_spec)
    embedded = _embed(draft, _plan(rec, loaded, batch_size), loaded, min_duration=min_duration,
                      batch_size=batch_size, workers=workers, progress=progress)
    index = _assemble(draft, loaded, settings)
    write_index(index, out)
    return _report(draft, index, rec.removed, embedded, time.time() - start)


def _window_spec(out: Path, windows: tuple[float, float] | bool | None) -> tuple[float, float] | None:
    """(window, hop) to index: as given, or (``windows=None``) those of the existing index at ``out``, if any."""
    if windows is None:
        try:
            meta = json.loads((pq.read_schema(out).metadata or {})[META_KEY]) if out.exists() else {}
            spec = meta.get("settings", {}).get("windows")
        except Exception:  # noqa: BLE001 - an unreadable index is reported by _previous_index
            spec = None
        return (float(spec["window"]), float(spec["hop"])) if spec else None
    if windows is False:
        return None
    if windows is True:
        raise ValueError("windows must be (window, hop) in seconds, False, or None")
    window, hop = (float(v) for v in windows)
    check_window(window, hop)
    return window, hop
