"""Pooled text-encoder features of every caption, computed once when the text encoder is frozen.

A frozen encoder gives the same features in every epoch and every stage, so they are a DVC output of
their own (``npz``: caption_ids, features). They also serve as the Sentence-BERT caption embeddings that
caption-similarity relevances (seed 001) need.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from salsa2.fsutil import atomic_path


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
