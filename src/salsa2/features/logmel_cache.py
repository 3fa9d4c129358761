"""Sharded float16 log-mel cache: a few large memory-mappable .npy shards plus an index, per frontend setting.

Layout of a cache directory::

    frontend.json        the FrontendConfig that made it (and its key)
    index.parquet        audio_id, shard, start, frames
    shard-00000.npy ...  float16 arrays (n_mels, total_frames): clips concatenated along time
    rejects.csv          audio_id, path, reason, detail of every clip that could not be used
"""

from __future__ import annotations

import dataclasses
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from collections.abc import Iterable

import numpy as np
import pandas as pd
from tqdm import tqdm

from salsa2.audio.decode import AudioReadError
from salsa2.audio.frontends import FrontendConfig, LogMel
from salsa2.utils.fsutil import atomic_dir, read_json, write_json
from salsa2.audio.logmel_stream import load_logmel
from salsa2.data.tables import read_tables

SHARD_BYTES = 128 * 2**20


def build_cache(
    out_dir: str | Path,
    audio: pd.DataFrame,
    cfg: FrontendConfig,
    *,
    root: str | Path = ".",
    min_duration: float = 0.5,
    shard_bytes: int = SHARD_BYTES,
    workers: int = 2,
) -> pd.DataFrame:
    """Decode every clip of ``audio`` (columns audio_id, path), write its log-mel to shards in ``out_dir``.

    Clips that are corrupt, empty, silent, non-finite or shorter than ``min_duration`` are skipped and listed
    in ``rejects.csv`` (each decoded in blocks: memory ~ one clip's float16 log-mel); the directory appears
    atomically. Returns the rejects table.
    """
    root = Path(root)
    module = LogMel(cfg)
    rejects: list[dict] = []
    index_rows: list[dict] = []

    def load(row: tuple[str, str]) -> tuple[str, str, np.ndarray | AudioReadError]:
        audio_id, path = row
        try:
            mel, _ = load_logmel(root / path, cfg, module, min_duration=min_duration, dtype=np.float16)
            return audio_id, path, mel
        except AudioReadError as err:
            return audio_id, path, err

    with atomic_dir(out_dir) as tmp:
        pending: list[np.ndarray] = []
        pending_bytes = 0
        shard = 0

        def flush() -> None:
            nonlocal pending, pending_bytes, shard
            if pending:
                np.save(tmp / f"shard-{shard:05d}.npy", np.concatenate(pending, axis=1))
                shard += 1
                pending, pending_bytes = [], 0

        offset = 0
        rows: Iterable = zip(audio["audio_id"].tolist(), audio["path"].tolist())
        with ThreadPoolExecutor(max(1, workers)) as pool:
            for audio_id, path, result in tqdm(
                pool.map(load, rows), total=len(audio), desc=f"log-mel {cfg.key()}", unit="clip"
            ):
                if isinstance(result, AudioReadError):
                    rejects.append({"audio_id": audio_id, "path": path, "reason": result.reason,
                                    "detail": result.detail})
                    continue
                if not pending:
                    offset = 0
                frames = result.shape[1]
                index_rows.append({"audio_id": audio_id, "shard": shard, "start": offset, "frames": frames})
                pending.append(result)
                offset += frames
                pending_bytes += result.nbytes
                if pending_bytes >= shard_bytes:
                    flush()
            flush()
        pd.DataFrame(index_rows, columns=["audio_id", "shard", "start", "frames"]).to_parquet(
            tmp / "index.parquet", index=False
        )
        rej = pd.DataFrame(rejects, columns=["audio_id", "path", "reason", "detail"])
        rej.to_csv(tmp / "rejects.csv", index=False)
        write_json(tmp / "frontend.json", {"key": cfg.key(), **cfg.to_dict()})
    return rej


def cache_key(path: str | Path) -> str:
    """The frontend key (``FrontendConfig.key``) of the cache directory ``path``, from its frontend.json."""
    meta = read_json(Path(path) / "frontend.json")
    assert isinstance(meta, dict)
    return str(meta["key"])


class SpectrogramCache:
    """Read-only access to a cache directory; shards are memory-mapped lazily."""

    def __init__(self, path: str | Path, expect: FrontendConfig | None = None) -> None:
        self.path = Path(path)
        meta = read_json(self.path / "frontend.json")
        assert isinstance(meta, dict)
        meta.pop("key", None)
        self.frontend = FrontendConfig(**meta)
        if expect is not None and expect.key() != self.frontend.key():
            raise ValueError(
                f"{self.path} holds features for frontend {self.frontend} but the encoder expects {expect}; "
                "point it at the cache built with the encoder's frontend (params.yaml: frontends)"
            )
        index = pd.read_parquet(self.path / "index.parquet")
        self._rows = {
            a: (int(s), int(o), int(f))
            for a, s, o, f in zip(index["audio_id"], index["shard"], index["start"], index["frames"])
        }
        self._shards: dict[int, np.ndarray] = {}

    def __contains__(self, audio_id: str) -> bool:
        return audio_id in self._rows

    def __len__(self) -> int:
        return len(self._rows)

    def ids(self) -> list[str]:
        return list(self._rows)

    def frames(self, audio_id: str) -> int:
        return self._rows[audio_id][2]

    def get(self, audio_id: str) -> np.ndarray:
        """The (n_mels, frames) float16 log-mel of one clip (a view into a memory-mapped shard)."""
        shard, start, frames = self._rows[audio_id]
        if shard not in self._shards:
            self._shards[shard] = np.load(self.path / f"shard-{shard:05d}.npy", mmap_mode="r")
        return self._shards[shard][:, start : start + frames]

    def rejects(self) -> pd.DataFrame:
        return pd.read_csv(self.path / "rejects.csv")


class MemoryCache:
    """audio_id -> (n_mels, T) log-mel held in memory, with SpectrogramCache's ``get``/``frames`` (benchmarks,
    tests, log-mels computed on the fly)."""

    def __init__(self, mels: dict[str, np.ndarray]) -> None:
        self.mels = mels

    def get(self, audio_id: str) -> np.ndarray:
        return self.mels[audio_id]

    def frames(self, audio_id: str) -> int:
        return self.mels[audio_id].shape[1]


def frontend_from_params(d: dict) -> FrontendConfig:
    known = {f.name for f in dataclasses.fields(FrontendConfig)}
    unknown = set(d) - known
    if unknown:
        raise ValueError(f"unknown frontend settings {sorted(unknown)}; known: {sorted(known)}")
    return FrontendConfig(**d)


def union_audio(data_dirs: str | Path | list) -> pd.DataFrame:
    """The audio tables of one or several prepared folders, each clip once."""
    dirs = [data_dirs] if isinstance(data_dirs, (str, Path)) else list(data_dirs)
    audio = pd.concat([read_tables(d)[0] for d in dirs], ignore_index=True)
    return audio.drop_duplicates("audio_id", keep="first").reset_index(drop=True)


def build_features(data_dir: str | Path | list, frontend: FrontendConfig, out_dir: str | Path, min_duration: float):
    """Log-mel cache of every clip of ``data_dir`` (a prepared folder or a list of them, e.g. fine-tuning +
    pretraining data)."""
    return build_cache(out_dir, union_audio(data_dir), frontend, min_duration=min_duration)
