"""Which log-mel cache a model reads: the one its own frontend made (``FrontendConfig.key``), found among the
caches of a features folder (``data/features/<frontend name>``, stage ``features@<frontend>``).

A model trained here reads the cache of the frontend ``encoders`` gives it; a released model (PaSST: the
``kaldi128`` frontend of params-paper.yaml) reads whichever cache has its frontend's key, so the frontend must be
defined under ``frontends`` in params.yaml (or its cache built with ``salsa2 features``)."""

from __future__ import annotations

from pathlib import Path

from salsa2.audio.frontend_config import FrontendConfig
from salsa2.features.logmel_cache import cache_key
from salsa2.utils.errors import UserError


class NoFeatureCache(UserError):
    """No cache of a model's frontend."""


def feature_caches(*folders: str | Path) -> dict[str, Path]:
    """Frontend key -> cache folder, for each folder that is a cache (has frontend.json) or holds caches."""
    out: dict[str, Path] = {}
    for folder in map(Path, folders):
        candidates = [folder] if (folder / "frontend.json").is_file() else sorted(
            p for p in folder.iterdir() if (p / "frontend.json").is_file()) if folder.is_dir() else []
        for cache in candidates:
            out.setdefault(cache_key(cache), cache)
    return out


def cache_for(caches: dict[str, Path], frontend: FrontendConfig, model: str, where: str | Path = "") -> Path:
    """The cache of ``frontend`` among ``caches`` (``feature_caches``); a missing one is a one-line error naming
    the model, its frontend and how to build the cache."""
    key = frontend.key()
    if key in caches:
        return caches[key]
    raise NoFeatureCache(
        f"{model}: no log-mel cache of its frontend ({frontend.n_mels} mel bins at {frontend.sample_rate} Hz, "
        f"key {key}) in {where or sorted(map(str, caches.values()))}; define that frontend under `frontends` in "
        "params.yaml (PaSST: kaldi128 of params-paper.yaml) and run `dvc repro features@<name>`, or build it with "
        "`salsa2 features DATA OUT --params params-paper.yaml --frontend kaldi128`")
