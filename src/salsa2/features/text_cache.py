"""Pooled text-encoder features of every caption, computed once when the text encoder is frozen.

A frozen encoder gives the same features in every epoch and every stage, so they are a DVC output of
their own (``npz``: caption_ids, features). They also serve as the Sentence-BERT caption embeddings that
caption-similarity relevances (Xie et al. 2024) need.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from salsa2.features.splits import load_split
from salsa2.model.encoders import TEXT_ENCODERS
from salsa2.utils.fsutil import atomic_path


@torch.no_grad()
def compute_text_features(encoder, texts: list[str], batch_size: int = 128) -> np.ndarray:
    """(N, H) features in ``texts`` order. Batches hold captions of similar length (sorted by characters, then
    restored), so little of each batch is padding: same features to float precision, about half the time."""
    encoder.eval()
    order = np.argsort([len(t) for t in texts], kind="stable")
    out = np.zeros((len(texts), encoder.out_dim), np.float32)
    for s in tqdm(range(0, len(texts), batch_size), desc="text features", unit="batch"):
        idx = order[s : s + batch_size]
        out[idx] = encoder.encode([texts[i] for i in idx]).float().cpu().numpy()
    return out


def save_text_features(path: str | Path, caption_ids: list[str], features: np.ndarray, meta: dict) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, caption_ids=np.array(caption_ids), features=features.astype(np.float32),
                     meta=np.array(repr(sorted(meta.items()))))


class TextFeatureStore:
    """caption_id -> feature row lookup over a saved npz."""

    def __init__(self, path: str | Path) -> None:
        with np.load(path) as z:
            self.features = z["features"]
            ids = z["caption_ids"].tolist()
            self.meta = str(z["meta"])
        self._row = {c: i for i, c in enumerate(ids)}

    def lookup(self, caption_ids: list[str]) -> np.ndarray:
        try:
            return self.features[[self._row[c] for c in caption_ids]]
        except KeyError as err:
            raise KeyError(
                f"caption {err.args[0]!r} has no cached text feature; re-run the text_features stage"
            ) from None


def text_store(params, text_features: str | Path | None) -> TextFeatureStore | None:
    """The cached features of ``params`` (a ``config.Params``), used exactly when the text encoder is frozen."""
    if params.text.trainable_layers != 0 or text_features is None:
        return None
    return TextFeatureStore(text_features)


def build_text_features(data_dir: str | Path | list, model: str, max_length: int, normalize: bool | str,
                        pooling: str | None, out_path: str | Path) -> None:
    """Frozen-text features of every caption of ``data_dir`` (one prepared folder or a list; each caption once)."""
    dirs = [data_dir] if isinstance(data_dir, (str, Path)) else list(data_dir)
    caption_ids: list[str] = []
    texts: list[str] = []
    seen: set[str] = set()
    for d in dirs:
        data = load_split(d, ["train", "val", "test"], normalize_text=normalize)
        for cid, text in zip(data.caption_ids, data.texts):
            if cid not in seen:
                seen.add(cid)
                caption_ids.append(cid)
                texts.append(text)
    kwargs = {"max_length": max_length, "trainable_layers": 0, **({"pooling": pooling} if pooling else {})}
    encoder = TEXT_ENCODERS.build(model, **kwargs)
    feats = compute_text_features(encoder, texts)
    save_text_features(out_path, caption_ids, feats, {"model": model, "normalize": normalize, **kwargs})
