"""Your own sound library: a folder of audio files plus a CSV or Parquet of (file, caption[, split]).

``file`` is relative to the folder; a clip may have any number of captions (one row each). Without a
``split`` column every clip is put in ``default_split``. The embedded demo is written in this format.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from salsa2.audio import AudioReadError, audio_info
from salsa2.datasets import DATASETS
from salsa2.datasets.base import Prepared
from salsa2.tables import SPLITS, TableError
from salsa2.text_norm import clean_caption


def read_caption_file(path: Path) -> pd.DataFrame:
    if not path.exists():
        raise FileNotFoundError(f"{path}: caption file not found; expected a CSV/Parquet with columns file, caption")
    df = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = {"file", "caption"} - set(df.columns)
    if missing:
        raise TableError(f"{path}: missing column(s) {sorted(missing)}; expected file, caption[, split]")
    return df


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
    empty = pairs["caption"].astype(str).map(clean_caption) == ""
    if empty.any():
        row = int(empty.to_numpy().nonzero()[0][0])
        raise TableError(f"{source}: row {row + 2} has an empty caption; remove the row or fill it in")
    audio_rows, caption_rows, rejects = [], [], []
    for file, group in pairs.groupby("file", sort=False):
        split = group["split"].iloc[0]
        if (group["split"] != split).any():
            raise TableError(f"{source}: {file!r} is listed in several splits; give each file one split")
        audio_id = f"{dataset}/{Path(str(file)).with_suffix('').as_posix()}"
        path = root / str(file)
        try:
            if not path.exists():
                raise AudioReadError(path, "missing", "listed in the caption file but not on disk")
            duration, sr, channels = audio_info(path)
        except AudioReadError as err:
            rejects.append({"audio_id": audio_id, "path": str(path), "reason": err.reason, "detail": err.detail})
            continue
        audio_rows.append({"audio_id": audio_id, "dataset": dataset, "split": split, "path": str(path),
                           "duration": duration, "sample_rate": sr, "channels": channels})
        for i, raw in enumerate(group["caption"].astype(str)):
            caption_rows.append({"caption_id": f"{audio_id}#{i}", "audio_id": audio_id, "index": i,
                                 "text": clean_caption(raw), "raw_text": raw})
    return Prepared(
        pd.DataFrame(audio_rows),
        pd.DataFrame(caption_rows),
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
