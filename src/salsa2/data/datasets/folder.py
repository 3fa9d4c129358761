"""Your own sound library: a folder of audio files plus a CSV or Parquet of (file, caption[, split]).

``file`` is relative to the folder; a clip may have any number of captions (one row each). Without a
``split`` column every clip is put in ``default_split``. The embedded demo is written in this format.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from salsa2.audio.decode import AudioReadError, audio_info
from salsa2.data.datasets import DATASETS
from salsa2.data.datasets.base import Prepared
from salsa2.data.tables import AUDIO_COLUMNS, CAPTION_COLUMNS, SPLITS, TableError
from salsa2.data.text_norm import clean_caption

log = logging.getLogger(__name__)


def _first_non_utf8(path: Path) -> str:
    """'row N (byte b'\\xe9')' of the first line that does not decode as UTF-8."""
    for n, line in enumerate(path.read_bytes().splitlines(), 1):
        try:
            line.decode("utf-8")
        except UnicodeDecodeError as err:
            return f"row {n} (byte {line[err.start : err.start + 1]!r})"
    return "a row"


def read_caption_file(path: Path) -> pd.DataFrame:
    """The caption table as strings; a null (Parquet None/NaN) is the empty string, never "nan"."""
    if not path.exists():
        raise TableError(f"{path}: caption file not found; expected a CSV/Parquet with columns file, caption")
    try:
        df = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path, dtype=str,
                                                                                keep_default_na=False)
    except UnicodeDecodeError:
        raise TableError(f"{path}: {_first_non_utf8(path)} is not UTF-8 text; save the caption file as UTF-8") from None
    except (ValueError, OSError) as err:
        raise TableError(f"{path}: cannot read it as {'Parquet' if path.suffix == '.parquet' else 'CSV'} "
                         f"({str(err).splitlines()[0] if str(err) else type(err).__name__}); give a CSV/Parquet "
                         "with columns file, caption[, split]") from None
    missing = {"file", "caption"} - set(df.columns)
    if missing:
        raise TableError(f"{path}: missing column(s) {sorted(missing)}; expected file, caption[, split]")
    if df.empty:
        raise TableError(f"{path}: no rows, only the header; add one row per caption (file, caption[, split])")
    for col in df.columns:
        if df[col].dtype == object or col in ("file", "caption", "split"):
            df[col] = df[col].map(lambda v: "" if v is None or (isinstance(v, float) and v != v) else str(v))
    return df


def drop_bad_captions(pairs: pd.DataFrame, source: str) -> tuple[pd.DataFrame, list[dict]]:
    """Drop rows with an empty caption and repeated (file, caption) rows; one reject row (with the row number
    in ``source``, header = row 1) for each, so nothing disappears unreported."""
    cleaned = pairs["caption"].map(clean_caption)
    line = pairs.index.to_numpy() + 2
    empty = (cleaned == "").to_numpy()
    dup = (pairs.assign(_c=cleaned).duplicated(["file", "_c"]) & ~(cleaned == "")).to_numpy()
    first = {}
    for n, (f, c) in zip(line, zip(pairs["file"], cleaned)):
        first.setdefault((f, c), n)
    dropped = []
    for n, f, c, e, d in zip(line, pairs["file"], cleaned, empty, dup):
        if e or d:
            detail = (f"{source} row {n}: empty caption dropped" if e
                      else f"{source} row {n}: repeats row {first[(f, c)]}, dropped")
            dropped.append({"file": f, "reason": "empty_caption" if e else "duplicate_caption", "detail": detail})
    if dropped:
        log.warning("%s: %d empty and %d duplicate caption rows dropped (listed in rejects.csv)", source,
                    int(empty.sum()), int(dup.sum()))
    return pairs.loc[~(empty | dup)], dropped


def _audio_ids(files: list, dataset: str, source: str) -> dict:
    """``<dataset>/<file without extension>`` per file; files that differ only in their extension (``same.wav``,
    ``same.flac``) keep it (``<dataset>/same.wav``), so both stay clips of their own (logged)."""
    stems: dict[str, list[str]] = {}
    for f in dict.fromkeys(str(f) for f in files):
        stems.setdefault(Path(f).with_suffix("").as_posix(), []).append(f)
    out = {}
    for stem, names in stems.items():
        if len(names) > 1:
            log.info("%s: %s share the name %r; their ids keep the extension", source, " and ".join(names), stem)
        for name in names:
            out[name] = f"{dataset}/{Path(name).as_posix() if len(names) > 1 else stem}"
    return out


def tables_from_pairs(
    pairs: pd.DataFrame, *, root: Path, dataset: str, source: str, default_split: str = "train"
) -> Prepared:
    """(file, caption[, split]) rows -> tables. Unreadable or missing files go to ``rejects`` with a reason."""
    if "split" not in pairs.columns:
        pairs = pairs.assign(split=default_split)
    bad = pairs.loc[~pairs["split"].isin(SPLITS)]
    if len(bad):
        row = int(bad.index[0])
        raise TableError(f"{source}: row {row + 2} has split {bad['split'].iloc[0]!r}; use one of {SPLITS}")
    pairs, dropped = drop_bad_captions(pairs.reset_index(drop=True), source)
    audio_id = _audio_ids(pairs["file"].tolist() + [d["file"] for d in dropped], dataset, source)
    audio_rows, caption_rows, rejects = [], [], []
    for d in dropped:
        rejects.append({"audio_id": audio_id[d["file"]], "path": str(root / str(d["file"])), "reason": d["reason"],
                        "detail": d["detail"]})
    kept = set(pairs["file"])
    for f in dict.fromkeys(d["file"] for d in dropped if d["file"] not in kept):
        rejects.append({"audio_id": audio_id[f], "path": str(root / str(f)),
                        "reason": "no_caption", "detail": f"every caption row of {f!r} in {source} was dropped"})
    for file, group in pairs.groupby("file", sort=False):
        split = group["split"].iloc[0]
        if (group["split"] != split).any():
            raise TableError(f"{source}: {file!r} is listed in several splits; give each file one split")
        clip_id = audio_id[file]
        path = root / str(file)
        try:
            if not path.exists():
                raise AudioReadError(path, "missing", "listed in the caption file but not on disk")
            duration, sr, channels = audio_info(path)
        except AudioReadError as err:
            rejects.append({"audio_id": clip_id, "path": str(path), "reason": err.reason, "detail": err.detail})
            continue
        audio_rows.append({"audio_id": clip_id, "dataset": dataset, "split": split, "path": str(path),
                           "duration": duration, "sample_rate": sr, "channels": channels})
        for i, raw in enumerate(group["caption"].astype(str)):
            caption_rows.append({"caption_id": f"{clip_id}#{i}", "audio_id": clip_id, "index": i,
                                 "text": clean_caption(raw), "raw_text": raw})
    return Prepared(
        pd.DataFrame(audio_rows, columns=list(AUDIO_COLUMNS)),
        pd.DataFrame(caption_rows, columns=list(CAPTION_COLUMNS)),
        pd.DataFrame(rejects, columns=["audio_id", "path", "reason", "detail"]),
    )


@DATASETS.register("folder")
def prepare_folder(root: str, captions: str = "captions.csv", name: str = "", default_split: str = "train") -> Prepared:
    """Args: root: the folder; captions: the caption file inside it (or an absolute path); name: dataset name
    used in ids (default: the folder's name)."""
    root_path = Path(root)
    cap_path = Path(captions) if Path(captions).is_absolute() else root_path / captions
    pairs = read_caption_file(cap_path)
    return tables_from_pairs(
        pairs, root=root_path, dataset=name or root_path.name, source=str(cap_path), default_split=default_split
    )
