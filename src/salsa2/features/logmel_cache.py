"""Sharded float16 log-mel cache: a few large memory-mappable .npy shards plus an index, per frontend setting.

Layout of a cache directory::

    frontend.json        the FrontendConfig that made it (and its key)
    index.parquet        audio_id, shard, start, frames
    shard-00000.npy ...  float16 arrays (n_mels, total_frames): clips concatenated along time
    rejects.csv          audio_id, path, reason, detail of every clip that could not be used
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from salsa2.audio.decode_pool import DecodePool
from salsa2.audio.frontends import FrontendConfig, LogMel
from salsa2.utils.fsutil import atomic_dir, read_json, write_json
from salsa2.audio.logmel_stream import load_logmel
from salsa2.data.tables import read_tables

SHARD_BYTES = 128 * 2**20
AHEAD_PER_WORKER = 4  # clips decoded ahead of the shard writer, per worker
REJECT_COLUMNS = ["audio_id", "path", "reason", "detail"]


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
    in ``rejects.csv`` (each decoded in blocks; memory ~ the float16 log-mels of the few clips decoded ahead);
    the directory appears atomically. Returns the rejects table.
    """
    root = Path(root)
    module = LogMel(cfg)

    def load(clip: tuple[str, str]) -> np.ndarray:
        return load_logmel(root / clip[1], cfg, module, min_duration=min_duration, dtype=np.float16)[0]

    clips = zip(audio["audio_id"].tolist(), audio["path"].tolist())
    with atomic_dir(out_dir) as tmp:
        with tqdm(total=len(audio), desc=f"log-mel {cfg.key()}", unit="clip") as bar, \
                DecodePool(load, workers, progress=bar) as pool:
            shards = _ShardWriter(tmp, shard_bytes)
            for (audio_id, _), mel in pool.map(clips, ahead=AHEAD_PER_WORKER * pool.workers):
                shards.add(audio_id, mel)
            shards.flush()
        shards.index().to_parquet(tmp / "index.parquet", index=False)
        rej = pd.DataFrame([{"audio_id": audio_id, "path": path, "reason": err.reason, "detail": err.detail}
                            for (audio_id, path), err in pool.rejects], columns=REJECT_COLUMNS)
        rej.to_csv(tmp / "rejects.csv", index=False)
        write_json(tmp / "frontend.json", {"key": cfg.key(), **cfg.to_dict()})
    return rej


class _ShardWriter:
    """Concatenates log-mels along time into ``shard-NNNNN.npy`` files of about ``shard_bytes`` each."""

    def __init__(self, folder: Path, shard_bytes: int) -> None:
        self.folder = folder
        self.shard_bytes = shard_bytes
        self.shard = 0
        self.pending: list[np.ndarray] = []
        self.pending_bytes = 0
        self.offset = 0
        self.rows: list[dict] = []

    def add(self, audio_id: str, mel: np.ndarray) -> None:
        """Append one clip's (n_mels, frames) log-mel; a shard is written once it holds ``shard_bytes``."""
        if not self.pending:
            self.offset = 0
        frames = mel.shape[1]
        self.rows.append({"audio_id": audio_id, "shard": self.shard, "start": self.offset, "frames": frames})
        self.pending.append(mel)
        self.offset += frames
        self.pending_bytes += mel.nbytes
        if self.pending_bytes >= self.shard_bytes:
            self.flush()

    def flush(self) -> None:
        """Write the clips added since the last shard (if any) as the next shard."""
        if self.pending:
            np.save(self.folder / f"shard-{self.shard:05d}.npy", np.concatenate(self.pending, axis=1))
            self.shard += 1
            self.pending, self.pending_bytes = [], 0

    def index(self) -> pd.DataFrame:
        """audio_id, shard, start, frames of every clip added."""
        return pd.DataFrame(self.rows, columns=["audio_id", "shard", "start", "frames"])


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
