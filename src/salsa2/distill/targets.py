"""Estimated audio-caption correspondences (Primus et al. 2024, sec. 3), dense or from embeddings.

Each stage-1 model m gives train-set embeddings a_m (A, D) and t_m (T, D), hence similarities
``C^m = a_m t_m^T``; the ensemble is their mean ``C-hat_ij = 1/M sum_m C^m_ij``. Stage 2 turns the
batch's block of C-hat into soft targets (softmax at tau in both directions, ``salsa2.training.losses.distill``).

Two storages of C-hat, chosen by ``stage2.targets`` (``resolve_mode``):

- ``dense``: the (A, T) float32 matrix itself; a batch block is a lookup. Fine for small data (the
  demo: 600 x 3000 entries), impossible at WavCaps scale (400k x 400k = 640 GB).
- ``embeddings``: every member's a_m and t_m, aligned to one id order; a batch block is computed on
  the fly as ``1/M sum_m a_m[rows] t_m[cols]^T`` (O(M N D) memory, as in the authors' code).
- ``auto`` (default): dense up to ``DENSE_MAX_ENTRIES`` entries (100 MB), embeddings above.

Both give the same blocks up to float32 rounding (tests/test_targets_streaming.py). Similarity dumps
(``salsa2.distill.members``) hold only ids and embeddings (O(N D)); nothing here forms an N x N matrix unless the
dense mode asks.
All npz files are written uncompressed and read memory-mapped (``salsa2.utils.npz``), so a 400k x 1024
member is paged in by the rows a batch touches, not loaded whole.
"""

from __future__ import annotations

from pathlib import Path
from collections.abc import Iterator
from typing import TYPE_CHECKING, Protocol

import numpy as np

from salsa2.distill.members import MemberEmbeddings, load_embeddings
from salsa2.utils.npz import open_npz, release_pages, write_npz

if TYPE_CHECKING:  # torch only where a training run reads blocks: the ensemble stage stays torch-free
    import torch

TARGET_MODES = ("auto", "dense", "embeddings")
DENSE_MAX_ENTRIES = 25_000_000  # auto: a dense C-hat of at most this many float32 entries (100 MB)
CHUNK_ROWS = 16_384  # rows copied at a time when streaming embeddings between files


def _rows(block: int, n: int) -> Iterator[slice]:
    for s in range(0, n, block):
        yield slice(s, min(n, s + block))


def mean_block(audio: list[np.ndarray], text: list[np.ndarray], rows, cols) -> np.ndarray:
    """``1/M sum_m audio[m][rows] @ text[m][cols].T`` in float32: one block of C-hat from embeddings."""
    total = None
    for a, t in zip(audio, text):
        part = np.asarray(a[rows], np.float32) @ np.asarray(t[cols], np.float32).T
        total = part if total is None else total + part
    assert total is not None, "mean over zero members"
    return total / np.float32(len(audio))


def dense_similarity(audio: list[np.ndarray], text: list[np.ndarray], block: int = 2048) -> np.ndarray:
    """The whole (A, T) C-hat, filled ``block`` rows at a time (only the output is A x T)."""
    out = np.empty((audio[0].shape[0], text[0].shape[0]), np.float32)
    for rows in _rows(block, out.shape[0]):
        out[rows] = mean_block(audio, text, rows, slice(None))
    return out



def load_similarities(path: str | Path) -> tuple[np.ndarray, list[str], list[str]]:
    """The dense (A, T) similarity of a dump (computed blockwise from its embeddings) and its ids."""
    m = load_embeddings(path)
    return dense_similarity([m.audio_emb], [m.text_emb]), m.audio_ids, m.caption_ids


def _aligned(paths: list[str | Path]) -> tuple[list[str], list[str], list[tuple[MemberEmbeddings, np.ndarray | None,
                                                                                np.ndarray | None]]]:
    """The members, with row/column permutations onto the first member's id order (None: same order)."""
    if not paths:
        raise ValueError("the ensemble needs at least one member")
    first = load_embeddings(paths[0])
    audio_ids, caption_ids = first.audio_ids, first.caption_ids
    members: list[tuple[MemberEmbeddings, np.ndarray | None, np.ndarray | None]] = [(first, None, None)]
    for p in paths[1:]:
        m = load_embeddings(p)
        if set(m.audio_ids) != set(audio_ids) or set(m.caption_ids) != set(caption_ids):
            raise ValueError(f"{p}: its clips/captions differ from {paths[0]}'s; rebuild both from the same data")
        a_perm = c_perm = None
        if m.audio_ids != audio_ids:
            pos = {a: i for i, a in enumerate(m.audio_ids)}
            a_perm = np.array([pos[a] for a in audio_ids])
        if m.caption_ids != caption_ids:
            pos = {c: i for i, c in enumerate(m.caption_ids)}
            c_perm = np.array([pos[c] for c in caption_ids])
        members.append((m, a_perm, c_perm))
    return audio_ids, caption_ids, members


def _take(array: np.ndarray, perm: np.ndarray | None, rows: slice) -> np.ndarray:
    return np.asarray(array[rows] if perm is None else array[perm[rows]], np.float32)


def _chunks(array: np.ndarray, perm: np.ndarray | None) -> Iterator[np.ndarray]:
    """``array`` (reordered by ``perm``) in CHUNK_ROWS-row copies, releasing the mapped pages after each."""
    for rows in _rows(CHUNK_ROWS, array.shape[0]):
        chunk = np.array(_take(array, perm, rows))
        release_pages(array)
        yield chunk


def ensemble_similarities(paths: list[str | Path], block: int = 2048) -> tuple[np.ndarray, list[str], list[str]]:
    """Dense C-hat = mean of the members' similarities, aligned by ids (members may order rows differently)."""
    audio_ids, caption_ids, members = _aligned(paths)
    out = np.zeros((len(audio_ids), len(caption_ids)), np.float32)
    by_product = [(m, a, c) for m, a, c in members if m.similarity is None]
    texts = [_take(m.text_emb, c, slice(None)) for m, _, c in by_product]
    for rows in _rows(block, len(audio_ids)):
        if by_product:
            out[rows] = mean_block([_take(m.audio_emb, a, rows) for m, a, _ in by_product], texts, slice(None),
                                   slice(None)) * np.float32(len(by_product))
        for m, a, c in members:
            if m.similarity is not None:  # text-aware pooling: the stored matrix, reordered onto the id order
                part = _take(m.similarity, a, rows)
                out[rows] += part if c is None else part[:, c]
    out /= np.float32(len(members))
    return out, audio_ids, caption_ids


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


def build_targets(paths: list[str | Path], out_path: str | Path, members: list[str], mode: str = "auto") -> str:
    """C-hat of the dumps ``paths`` (one per member) -> ``out_path``; returns the storage used.

    ``embeddings``: each member's embeddings are copied in ``CHUNK_ROWS``-row chunks, reordered onto one
    id order, so peak memory is a chunk, not a member (and never A x T).
    """
    audio_ids, caption_ids, aligned = _aligned(paths)
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
    def block(self, audio_idx: np.ndarray, caption_idx: np.ndarray) -> torch.Tensor: ...


class TargetBlocks:
    """Several named providers (``ensemble``: C-hat, ``relevance``: Xie et al. 2024 g) -> a dict of (A, T) blocks."""

    def __init__(self, providers: dict[str, TargetProvider]) -> None:
        self.providers = providers

    def block(self, audio_idx: np.ndarray, caption_idx: np.ndarray) -> dict[str, torch.Tensor]:
        return {name: p.block(audio_idx, caption_idx) for name, p in self.providers.items()}
