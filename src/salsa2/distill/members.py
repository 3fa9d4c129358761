"""A teacher's train-set dump (Primus et al. 2024, sec. 3): clip/caption ids and the embeddings whose products are C^m.

Stage-1 model m embeds the training clips as a_m (A, D) and captions as t_m (T, D), L2-normalised, so its
similarities are ``C^m = a_m t_m^T``; the dump keeps only these factors (O(N D)), read back memory-mapped.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from salsa2.utils.npz import open_npz, write_npz


def save_similarities(
    path: str | Path, audio_ids: list[str], caption_ids: list[str], audio_emb: np.ndarray, text_emb: np.ndarray,
    similarity: np.ndarray | None = None,
) -> None:
    """One stage-1 model's train-set dump: row/column ids and the L2-normalised embeddings (O(N D), no matrix).

    ``similarity`` (A, T) is stored as well only for models whose similarity is not a dot product of these
    embeddings (text-aware pooling): the ensemble then reads it instead of ``audio_emb @ text_emb.T``.
    """
    if len(audio_emb) != len(audio_ids) or len(text_emb) != len(caption_ids):
        raise ValueError(f"{path}: {len(audio_emb)} audio embeddings for {len(audio_ids)} ids, {len(text_emb)} "
                         f"caption embeddings for {len(caption_ids)} ids")
    with write_npz(path) as w:
        w.add("audio_ids", np.array(audio_ids))
        w.add("caption_ids", np.array(caption_ids))
        w.add("audio_emb", np.asarray(audio_emb, np.float32))
        w.add("text_emb", np.asarray(text_emb, np.float32))
        if similarity is not None:
            w.add("similarity", np.asarray(similarity, np.float32))


@dataclass
class MemberEmbeddings:
    """One member's ids and (memory-mapped) embeddings."""

    audio_ids: list[str]
    caption_ids: list[str]
    audio_emb: np.ndarray
    text_emb: np.ndarray
    similarity: np.ndarray | None = None  # only for text-aware pooling (see save_similarities)


def load_embeddings(path: str | Path) -> MemberEmbeddings:
    """The dump at ``path`` (``save_similarities``), its arrays memory-mapped."""
    z = open_npz(path)
    missing = [k for k in ("audio_ids", "caption_ids", "audio_emb", "text_emb") if k not in z]
    if missing:
        raise ValueError(f"{path}: no {missing} in this similarity dump; re-run `dvc repro ensemble`")
    return MemberEmbeddings(z["audio_ids"].tolist(), z["caption_ids"].tolist(), z["audio_emb"], z["text_emb"],
                            z["similarity"] if "similarity" in z else None)
