"""Estimated audio-caption correspondences (seed 002 sec. 3).

Each stage-1 model m gives the train-set similarities C^m (audio x caption); the ensemble is their mean
``C-hat_ij = 1/M sum_m C^m_ij``. Stage 2 turns the batch's block of C-hat into soft targets (softmax at tau
in both directions, ``salsa2.losses.distill``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from salsa2.fsutil import atomic_path


def save_similarities(
    path: str | Path, audio_ids: list[str], caption_ids: list[str], audio_emb: np.ndarray, text_emb: np.ndarray,
    similarity: np.ndarray | None = None,
) -> None:
    """Write the (A, T) similarity matrix with its row/column ids, plus the embeddings that produced it.

    ``similarity`` defaults to ``audio_emb @ text_emb.T``; pass it when the model's similarity is not a dot
    product of these embeddings (text-aware pooling).
    """
    sim = audio_emb @ text_emb.T if similarity is None else similarity
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(
            f,
            audio_ids=np.array(audio_ids),
            caption_ids=np.array(caption_ids),
            similarity=sim.astype(np.float32),
            audio_emb=audio_emb.astype(np.float32),
            text_emb=text_emb.astype(np.float32),
        )


def load_similarities(path: str | Path) -> tuple[np.ndarray, list[str], list[str]]:
    with np.load(path) as z:
        return z["similarity"], z["audio_ids"].tolist(), z["caption_ids"].tolist()


def ensemble_similarities(paths: list[str | Path]) -> tuple[np.ndarray, list[str], list[str]]:
    """C-hat = mean of the members' matrices, aligned by ids (members may order rows differently)."""
    if not paths:
        raise ValueError("the ensemble needs at least one member")
    total, audio_ids, caption_ids = load_similarities(paths[0])
    total = total.astype(np.float64)
    for p in paths[1:]:
        sim, a_ids, c_ids = load_similarities(p)
        if set(a_ids) != set(audio_ids) or set(c_ids) != set(caption_ids):
            raise ValueError(f"{p}: its clips/captions differ from {paths[0]}'s; rebuild both from the same data")
        a_pos = {a: i for i, a in enumerate(a_ids)}
        c_pos = {c: i for i, c in enumerate(c_ids)}
        total += sim[np.ix_([a_pos[a] for a in audio_ids], [c_pos[c] for c in caption_ids])]
    return (total / len(paths)).astype(np.float32), audio_ids, caption_ids


def save_targets(path: str | Path, matrix: np.ndarray, audio_ids: list[str], caption_ids: list[str],
                 members: list[str]) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, similarity=matrix, audio_ids=np.array(audio_ids), caption_ids=np.array(caption_ids),
                 members=np.array(members))


class TeacherTargets:
    """C-hat restricted to a batch: rows/columns looked up by the training data's clip and caption ids."""

    def __init__(self, path: str | Path, audio_ids: list[str], caption_ids: list[str]) -> None:
        matrix, t_audio, t_caps = load_similarities(path)
        a_pos = {a: i for i, a in enumerate(t_audio)}
        c_pos = {c: i for i, c in enumerate(t_caps)}
        missing = [a for a in audio_ids if a not in a_pos][:3] + [c for c in caption_ids if c not in c_pos][:3]
        if missing:
            raise KeyError(f"{path}: no estimates for {missing}; rebuild the targets from the current data")
        self.matrix = matrix
        self.rows = np.array([a_pos[a] for a in audio_ids])
        self.cols = np.array([c_pos[c] for c in caption_ids])

    def block(self, audio_idx: np.ndarray, caption_idx: np.ndarray) -> torch.Tensor:
        """(A, T) block of C-hat for the batch's clip and caption indices (into the training data)."""
        return torch.from_numpy(self.matrix[np.ix_(self.rows[audio_idx], self.cols[caption_idx])])


class TargetProvider(Protocol):
    def block(self, audio_idx: np.ndarray, caption_idx: np.ndarray) -> torch.Tensor: ...


class TargetBlocks:
    """Several named providers (``ensemble``: C-hat, ``relevance``: seed 001 g) -> a dict of (A, T) blocks."""

    def __init__(self, providers: dict[str, TargetProvider]) -> None:
        self.providers = providers

    def block(self, audio_idx: np.ndarray, caption_idx: np.ndarray) -> dict[str, torch.Tensor]:
        return {name: p.block(audio_idx, caption_idx) for name, p in self.providers.items()}
