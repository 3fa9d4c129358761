"""The one Parquet schema every dataset is prepared into: an audio table and a captions table.

audio.parquet   audio_id (str, unique), dataset, split, path, duration (s), sample_rate (Hz, of the file),
                channels
captions.parquet caption_id (str, unique, ``{audio_id}#{index}``), audio_id, index (int, 0-based within the
                clip), text (normalised), raw_text (as published)
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from salsa2.utils.errors import UserError
from salsa2.utils.fsutil import atomic_dir, atomic_path

AUDIO_COLUMNS = {
    "audio_id": "string",
    "dataset": "string",
    "split": "string",
    "path": "string",
    "duration": "float64",
    "sample_rate": "int64",
    "channels": "int64",
}
CAPTION_COLUMNS = {
    "caption_id": "string",
    "audio_id": "string",
    "index": "int64",
    "text": "string",
    "raw_text": "string",
}
SPLITS = ("train", "val", "test")


class TableError(UserError, ValueError):
    """A table that does not follow the schema; the message names the file and the fix."""


def _conform(df: pd.DataFrame, columns: dict[str, str], name: str) -> pd.DataFrame:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise TableError(f"{name}: missing columns {missing}; expected {list(columns)}")
    extra = [c for c in df.columns if c not in columns]
    out = df[list(columns) + extra].copy()
    for col, dtype in columns.items():
        out[col] = out[col].astype(dtype)
    return out.reset_index(drop=True)


def validate_tables(audio: pd.DataFrame, captions: pd.DataFrame, name: str = "tables") -> None:
    """Check uniqueness and referential integrity; raise ``TableError`` naming the offending rows."""
    dup = audio["audio_id"][audio["audio_id"].duplicated()]
    if len(dup):
        raise TableError(f"{name}: duplicate audio_id {dup.iloc[0]!r} ({len(dup)} duplicates)")
    dupc = captions["caption_id"][captions["caption_id"].duplicated()]
    if len(dupc):
        raise TableError(f"{name}: duplicate caption_id {dupc.iloc[0]!r}")
    orphan = ~captions["audio_id"].isin(audio["audio_id"])
    if orphan.any():
        row = int(orphan.to_numpy().nonzero()[0][0])
        raise TableError(
            f"{name}: caption row {row} refers to unknown audio_id {captions['audio_id'].iloc[row]!r}"
        )
    bad_split = ~audio["split"].isin(SPLITS)
    if bad_split.any():
        row = int(bad_split.to_numpy().nonzero()[0][0])
        raise TableError(f"{name}: audio row {row} has split {audio['split'].iloc[row]!r}; use one of {SPLITS}")


def write_tables(out_dir: str | Path, audio: pd.DataFrame, captions: pd.DataFrame) -> None:
    out_dir = Path(out_dir)
    audio = _conform(audio, AUDIO_COLUMNS, "audio table")
    captions = _conform(captions, CAPTION_COLUMNS, "captions table")
    validate_tables(audio, captions, str(out_dir))
    for name, df in (("audio.parquet", audio), ("captions.parquet", captions)):
        with atomic_path(out_dir / name) as tmp:
            df.to_parquet(tmp, index=False)


PREPARED_FILES = ("audio.parquet", "captions.parquet", "rejects.csv")


def write_prepared(out_dir: str | Path, audio: pd.DataFrame, captions: pd.DataFrame, rejects: pd.DataFrame) -> None:
    """A prepared folder (audio.parquet, captions.parquet, rejects.csv) replaced as one step: written into a
    sibling folder that is renamed onto ``out_dir`` (``fsutil.atomic_dir``), so a kill never mixes old and new.
    A folder holding anything else is refused (it would be replaced as a whole)."""
    out_dir = Path(out_dir)
    if out_dir.is_dir():
        foreign = sorted(p.name for p in out_dir.iterdir()
                         if p.name not in PREPARED_FILES and not (p.name.startswith(".") and p.name.endswith(".tmp")))
        if foreign:
            raise UserError(f"{out_dir}: holds {foreign[0]!r}, which is no prepared table; give a new or empty output "
                            "folder (it is replaced as a whole by audio.parquet, captions.parquet, rejects.csv)")
    elif out_dir.exists():
        raise UserError(f"{out_dir}: is a file; give a folder for the prepared tables")
    validate_tables(_conform(audio, AUDIO_COLUMNS, f"{out_dir}: audio table"),
                    _conform(captions, CAPTION_COLUMNS, f"{out_dir}: captions table"), str(out_dir))  # names out_dir
    with atomic_dir(out_dir) as tmp:
        write_tables(tmp, audio, captions)
        rejects.to_csv(tmp / "rejects.csv", index=False)


def read_tables(data_dir: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    data_dir = Path(data_dir)
    missing = [name for name in ("audio.parquet", "captions.parquet") if not (data_dir / name).is_file()]
    if missing:
        what = "is no folder" if not data_dir.is_dir() else f"holds no prepared tables ({', '.join(missing)} missing)"
        raise TableError(f"{data_dir}: {what}; give a folder written by `salsa2 prepare` (or stage prepare), or run "
                         f"`salsa2 prepare SOUND_FOLDER {data_dir}` first")
    audio = _conform(pd.read_parquet(data_dir / "audio.parquet"), AUDIO_COLUMNS, str(data_dir / "audio.parquet"))
    captions = _conform(
        pd.read_parquet(data_dir / "captions.parquet"), CAPTION_COLUMNS, str(data_dir / "captions.parquet")
    )
    return audio, captions


class TooManyRejects(UserError, ValueError):
    """More clips were rejected than ``data.max_reject_share`` allows (missing or unreadable audio)."""


CAPTION_ROW_REASONS = frozenset({"empty_caption", "duplicate_caption"})  # rejects.csv rows that drop a caption only


def rejected_clips(rejects: pd.DataFrame) -> int:
    """Clips a rejects table drops (its caption-row entries, ``CAPTION_ROW_REASONS``, drop captions, not clips)."""
    if not len(rejects):
        return 0
    clips = rejects.loc[~rejects["reason"].isin(CAPTION_ROW_REASONS)]
    return int(clips["audio_id"].nunique()) if "audio_id" in clips else len(clips)


def rejected_caption_rows(rejects: pd.DataFrame) -> int:
    """Caption rows a rejects table drops without dropping their clip (``CAPTION_ROW_REASONS``)."""
    return int(rejects["reason"].isin(CAPTION_ROW_REASONS).sum()) if len(rejects) else 0


def rejects_summary(rejects: pd.DataFrame) -> str:
    """``N clips and M caption rows rejected``: clips counted once, however many of their rows are listed."""
    return f"{rejected_clips(rejects)} clips and {rejected_caption_rows(rejects)} caption rows rejected"


MAX_REJECT_SHARE = 0.05  # data.max_reject_share when params.yaml leaves it out


def max_reject_share(data: dict) -> float:
    """``data.max_reject_share`` of the params' ``data`` section (default MAX_REJECT_SHARE)."""
    return float(data.get("max_reject_share", MAX_REJECT_SHARE))


def check_reject_share(rejected: int, total: int, rejects_file: str | Path, max_share: float,
                       setting: str = "data.max_reject_share") -> None:
    """Raise when ``rejected / total`` exceeds ``max_share`` (a stage that caches 0 of 100 clips must not pass);
    ``setting``: the params key of the limit, named in the message."""
    share = rejected / total if total else 1.0
    if share > max_share:
        raise TooManyRejects(
            f"{rejected} of {total} clips rejected ({share:.1%} > {setting} {max_share:.1%}); "
            f"see {rejects_file} for why, fix the audio (or raise {setting})")
