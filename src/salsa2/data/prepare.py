"""Stage prepare: the datasets of params ``data.datasets`` / ``data.pretrain`` -> Parquet tables + rejects.csv
(``salsa2.data.datasets`` registry; docs/datasets.md)."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from salsa2.data.datasets import DATASETS
from salsa2.data.raw_shards import unpack
from salsa2.data.tables import check_reject_share, read_tables, rejected_caption_rows, rejected_clips, write_prepared

log = logging.getLogger(__name__)


def dataset_args(entry: dict, raw_root: str | Path | None = None, unpacked_root: str | Path | None = None) -> dict:
    """The builder kwargs of a ``data.datasets`` entry; ``raw: <download>`` points ``root`` at that download's
    shards under ``raw_root`` (stage download@<download>), unpacked under ``unpacked_root``
    (``salsa2.data.raw_shards``)."""
    args = dict(entry.get("args") or {})
    if entry.get("raw"):
        if raw_root is None or unpacked_root is None:
            raise TypeError(f"dataset {entry.get('name')!r} reads the download {entry['raw']!r}: "
                            "pass raw_root and unpacked_root")
        args["root"] = str(unpack(Path(raw_root) / entry["raw"], Path(unpacked_root) / entry["raw"]))
    return args


def prepare(datasets: list[dict], out_dir: str | Path, raw_root: str | Path | None = None,
            unpacked_root: str | Path | None = None) -> pd.DataFrame:
    """Prepare every dataset of ``datasets`` ([{name, args, raw}]) into one pair of tables; returns the rejects.
    An entry with ``raw`` reads that download (``dataset_args``)."""
    audio, captions, rejects = [], [], []
    for entry in datasets:
        prepared = DATASETS.build(entry["name"], **dataset_args(entry, raw_root, unpacked_root))
        audio.append(prepared.audio)
        captions.append(prepared.captions)
        rejects.append(prepared.rejects)
        clips = rejected_clips(prepared.rejects)
        log.info("%s: %d clips, %d captions; %d clips and %d caption rows rejected", entry["name"],
                 len(prepared.audio), len(prepared.captions), clips, rejected_caption_rows(prepared.rejects))
    rej = pd.concat(rejects, ignore_index=True)
    write_prepared(out_dir, pd.concat(audio, ignore_index=True), pd.concat(captions, ignore_index=True), rej)
    return rej


def prepare_pretrain(datasets: list[dict], pretrain: list[dict] | None, prepared_dir: str | Path,
                     out_dir: str | Path, raw_root: str | Path | None = None,
                     unpacked_root: str | Path | None = None) -> pd.DataFrame:
    """Stage-1 training data (Primus et al. 2024, Table 2: pretrain on WavCaps+AudioCaps+Clotho, fine-tune on Clotho).

    ``pretrain`` empty: stage 1 trains on the fine-tuning data, so ``out_dir`` gets a copy of the tables in
    ``prepared_dir`` (the demo's single-dataset set-up)."""
    if pretrain:
        return prepare(pretrain, out_dir, raw_root, unpacked_root)
    audio, captions = read_tables(prepared_dir)
    rej = pd.read_csv(Path(prepared_dir) / "rejects.csv")
    write_prepared(out_dir, audio, captions, rej)
    return rej


def check_rejects(datasets: list[dict], out_dir: str | Path, max_share: float, section: str = "data.datasets") -> None:
    """Each dataset's share of rejected clips in the tables at ``out_dir`` against its limit: the entry's
    ``max_reject_share`` (a documented allowance, e.g. AudioCaps' YouTube clips that no copy has any more) or
    ``max_share`` (``data.max_reject_share``); raises ``TooManyRejects`` naming the dataset and the setting."""
    audio, _ = read_tables(out_dir)
    rejects = pd.read_csv(Path(out_dir) / "rejects.csv", dtype=str, keep_default_na=False)
    for i, entry in enumerate(datasets):
        prefix = f"{(entry.get('args') or {}).get('name', entry['name'])}/"
        kept = int(audio["audio_id"].str.startswith(prefix).sum())
        dropped = rejected_clips(rejects.loc[rejects["audio_id"].str.startswith(prefix)])
        own = "max_reject_share" in entry
        check_reject_share(dropped, kept + dropped, f"{out_dir}/rejects.csv ({prefix[:-1]})",
                           float(entry["max_reject_share"]) if own else max_share,
                           f"{section}[{i}].max_reject_share" if own else "data.max_reject_share")
