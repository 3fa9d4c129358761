"""Stage prepare: the datasets of params ``data.datasets`` / ``data.pretrain`` -> Parquet tables + rejects.csv
(``salsa2.data.datasets`` registry; docs/datasets.md)."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from salsa2.data.datasets import DATASETS
from salsa2.data.raw_shards import unpack
from salsa2.data.tables import read_tables, rejected_caption_rows, rejected_clips, write_prepared

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
