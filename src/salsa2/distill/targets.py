"""C-hat files and their batch blocks (Primus et al. 2024, sec. 3): built once per teacher set, read by stage 2.

Stage 2 turns the batch's block of C-hat (``salsa2.distill.ensemble``) into soft targets (softmax at tau in both
directions, ``salsa2.training.losses.distill``). Two storages of C-hat, chosen by ``stage2.targets``
(``resolve_mode``):

- ``dense``: the (A, T) float32 matrix itself; a batch block is a lookup. Fine for small data (the
  demo: 600 x 3000 entries), impossible at WavCaps scale (400k x 400k = 640 GB).
- ``embeddings``: every member's a_m and t_m, aligned to one id order; a batch block is computed on
  the fly as ``1/M sum_m a_m[rows] t_m[cols]^T`` (O(M N D) memory, as in the authors' code).
- ``auto`` (default): dense up to ``DENSE_MAX_ENTRIES`` entries (100 MB), embeddings above.

Both give the same blocks up to float32 rounding (tests/distill/test_targets.py); nothing here forms an N x N
matrix unless the dense mode asks. Files are uncompressed and read memory-mapped (``salsa2.utils.npz``), so a
400k x 1024 member is paged in by the rows a batch touches, not loaded whole.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from salsa2.config.params import Params
from salsa2.distill.ensemble import (align_members, aligned_rows, ensemble_similarities, mean_block, row_slices,
                                     teacher_members, teacher_sets)
from salsa2.utils.npz import open_npz, release_pages, write_npz

if TYPE_CHECKING:  # torch only where a training run reads blocks: the ensemble stage stays torch-free
    import torch

log = logging.getLogger(__name__)

TARGET_MODES = ("auto", "dense", "embeddings")
DENSE_MAX_ENTRIES = 25_000_000  # auto: a dense C-hat of at most this many float32 entries (100 MB)
CHUNK_ROWS = 16_384  # rows copied at a time when streaming embeddings between files


# ------------------------------------------------------------------------------------------------ building
def resolve_mode(mode: str, n_audio: int, n_captions: int) -> str:
    """``auto`` -> ``dense`` when the matrix has at most DENSE_MAX_ENTRIES entries, else ``embeddings``."""
    if mode not in TARGET_MODES:
        raise ValueError(f"stage2.targets must be one of {TARGET_MODES}, got {mode!r}")
    if mode == "auto":
        return "dense" if n_audio * n_captions <= DENSE_MAX_ENTRIES else "embeddings"
    return mode


def save_targets(path: str | Path, matrix: np.ndarray, audio_ids: list[str], caption_ids: list[str],
                 members: list[str]) -> None:
    """A dense C-hat with its ids and member names."""
    with write_npz(path) as w:
        w.add("kind", np.array("dense"))
        w.add("similarity", np.asarray(matrix, np.float32))
        w.add("audio_ids", np.array(audio_ids))
        w.add("caption_ids", np.array(caption_ids))
        w.add("members", np.array(members))


def _chunks(array: np.ndarray, perm: np.ndarray | None) -> Iterator[np.ndarray]:
    """``array`` (reordered by ``perm``) in CHUNK_ROWS-row copies, releasing the mapped pages after each."""
    for rows in row_slices(CHUNK_ROWS, array.shape[0]):
        chunk = np.array(aligned_rows(array, perm, rows))
        release_pages(array)
        yield chunk


def build_targets(paths: list[str | Path], out_path: str | Path, members: list[str], mode: str = "auto") -> str:
    """C-hat of the dumps ``paths`` (one per member) -> ``out_path``; returns the storage used.

    ``embeddings``: each member's embeddings are copied in ``CHUNK_ROWS``-row chunks, reordered onto one
    id order, so peak memory is a chunk, not a member (and never A x T).
    """
    audio_ids, caption_ids, aligned = align_members(paths)
    kind = resolve_mode(mode, len(audio_ids), len(caption_ids))
    if any(m.similarity is not None for m, _, _ in aligned):
        if mode == "embeddings":
            raise ValueError("a member uses text-aware pooling (pooling: tap), whose similarities are not dot "
                             "products of stored embeddings: use stage2.targets: dense (or auto)")
        kind = "dense"
    if kind == "dense":
        matrix, _, _ = ensemble_similarities(paths)
        save_targets(out_path, matrix, audio_ids, caption_ids, members)
        return kind
    with write_npz(out_path) as w:
        w.add("kind", np.array("embeddings"))
        w.add("audio_ids", np.array(audio_ids))
        w.add("caption_ids", np.array(caption_ids))
        w.add("members", np.array(members))
        for i, (m, a_perm, c_perm) in enumerate(aligned):
            for name, array, perm in (("audio_emb", m.audio_emb, a_perm), ("text_emb", m.text_emb, c_perm)):
                w.add_rows(f"{name}_{i}", array.shape, np.float32, _chunks(array, perm))
    return kind


def build_ensemble(params: Params, student: str, sims_dir: str | Path, out_path: str | Path) -> list[str]:
    """C-hat for ``student``: the mean of its teachers' similarities, stored as ``stage2.targets`` says."""
    members = teacher_members(params, student)
    kind = build_targets([Path(sims_dir) / f"{m}.npz" for m in members], out_path, members, params.stage2.targets)
    log.info("targets for %s: %s storage, M=%d", student, kind, len(members))
    return members


def build_ensembles(params: Params, sims_dir: str | Path, targets_dir: str | Path) -> dict[str, list[str]]:
    """C-hat of every distinct teacher set into ``targets_dir`` (each computed once, however many students)."""
    sets = teacher_sets(params)
    Path(targets_dir).mkdir(parents=True, exist_ok=True)
    for name, members in sets.items():
        kind = build_targets([Path(sims_dir) / f"{m}.npz" for m in members], Path(targets_dir) / f"{name}.npz",
                             members, params.stage2.targets)
        log.info("targets %s: %s storage, M=%d", name, kind, len(members))
    return sets


# ---------------------------------------------------------------------------------------- blocks for training
class TeacherTargets:
    """C-hat restricted to a batch: rows/columns looked up by the training data's clip and caption ids.

    Reads either storage of ``build_targets``; with embeddings the block is computed per batch.
    """

    def __init__(self, path: str | Path, audio_ids: list[str], caption_ids: list[str]) -> None:
        z = open_npz(path)
        t_audio, t_caps = z["audio_ids"].tolist(), z["caption_ids"].tolist()
        a_pos = {a: i for i, a in enumerate(t_audio)}
        c_pos = {c: i for i, c in enumerate(t_caps)}
        missing = [a for a in audio_ids if a not in a_pos][:3] + [c for c in caption_ids if c not in c_pos][:3]
        if missing:
            raise KeyError(f"{path}: no estimates for {missing}; rebuild the targets from the current data")
        self.kind = str(z["kind"].item()) if "kind" in z else "dense"
        if self.kind == "dense":
            self.matrix = z["similarity"]
        else:
            n = sum(1 for k in z if k.startswith("audio_emb_"))
            self.audio = [z[f"audio_emb_{i}"] for i in range(n)]
            self.text = [z[f"text_emb_{i}"] for i in range(n)]
        self.rows = np.array([a_pos[a] for a in audio_ids], dtype=np.int64)
        self.cols = np.array([c_pos[c] for c in caption_ids], dtype=np.int64)

    def block(self, audio_idx: np.ndarray, caption_idx: np.ndarray) -> torch.Tensor:
        """(A, T) block of C-hat for the batch's clip and caption indices (into the training data)."""
        import torch

        rows, cols = self.rows[audio_idx], self.cols[caption_idx]
        if self.kind == "dense":
            return torch.from_numpy(np.asarray(self.matrix[np.ix_(rows, cols)], np.float32))
        return torch.from_numpy(mean_block(self.audio, self.text, rows, cols))


class TargetProvider(Protocol):
    """What the training loop asks for a batch: ``block(audio_idx, caption_idx)`` -> (A, T) targets."""

    def block(self, audio_idx: np.ndarray, caption_idx: np.ndarray) -> torch.Tensor: ...


class TargetBlocks:
    """Several named providers (``ensemble``: C-hat, ``relevance``: Xie et al. 2024 g) -> a dict of (A, T) blocks."""

    def __init__(self, providers: dict[str, TargetProvider]) -> None:
        self.providers = providers

    def block(self, audio_idx: np.ndarray, caption_idx: np.ndarray) -> dict[str, torch.Tensor]:
        return {name: p.block(audio_idx, caption_idx) for name, p in self.providers.items()}
