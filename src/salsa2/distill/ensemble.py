"""The teacher ensemble (Primus et al. 2024, sec. 3): who teaches each student, and C-hat, the teachers' mean.

Member m's similarities are ``C^m = a_m t_m^T`` (``salsa2.distill.members``); ``C-hat_ij = 1/M sum_m C^m_ij``,
with the members aligned by clip and caption ids. ``stage2.teachers``: ``all`` gives one teacher set shared by
every student, ``self`` one per student, a list names the members: stage-1 models by encoder and released models
(params ``released``, imported by stage release@<name>) as ``released-<name>``, e.g. ``[passt, atst, mn,
released-passt_roberta]``; a set's C-hat lies in ``<targets_dir>/<members joined by '+'>.npz``
(written by ``salsa2.distill.targets``). Torch-free: stage2 only looks up ``targets_path`` here.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from salsa2.config.params import Params
from salsa2.distill.members import MemberEmbeddings, load_embeddings
from salsa2.model.locate import released_name

AlignedMember = tuple[MemberEmbeddings, np.ndarray | None, np.ndarray | None]  # member, row perm, column perm


# ------------------------------------------------------------------------------------------- teacher sets
def teacher_members(params: Params, student: str) -> list[str]:
    """Which stage-1 models estimate the correspondences for ``student`` (``stage2.teachers``)."""
    teachers = params.stage2.teachers
    if teachers == "all":
        return list(params.encoders)
    if teachers == "self":
        return [student]
    members = [teachers] if isinstance(teachers, str) else list(teachers)
    unknown = [m for m in members if m not in params.encoders and not is_released_member(m)]
    if unknown:
        raise ValueError(f"stage2.teachers names {unknown}, which are not in encoders {params.encoders} (a released "
                         "model is named released-<its name under released>)")
    if len(set(members)) != len(members):
        raise ValueError(f"stage2.teachers names a model twice: {members}")
    return members


def is_released_member(member: str) -> bool:
    """A teacher that is a released model (``released-<name>``), not a stage-1 model."""
    return released_name(member) is not None


def teacher_set_name(members: list[str]) -> str:
    """The file stem of a teacher set's C-hat."""
    return "+".join(members)


def teacher_sets(params: Params) -> dict[str, list[str]]:
    """Every distinct teacher set the students of ``encoders`` need: name -> members."""
    sets: dict[str, list[str]] = {}
    for student in params.encoders:
        members = teacher_members(params, student)
        sets.setdefault(teacher_set_name(members), members)
    return sets


def targets_path(params: Params, student: str, targets_dir: str | Path) -> Path:
    """Where the C-hat that ``student`` distils from lies."""
    return Path(targets_dir) / f"{teacher_set_name(teacher_members(params, student))}.npz"


# ------------------------------------------------------------------------------------ mean over members
def row_slices(block: int, n: int) -> Iterator[slice]:
    """``range(n)`` as consecutive slices of at most ``block`` rows."""
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
    for rows in row_slices(block, out.shape[0]):
        out[rows] = mean_block(audio, text, rows, slice(None))
    return out


def align_members(paths: list[str | Path]) -> tuple[list[str], list[str], list[AlignedMember]]:
    """The members, with row/column permutations onto the first member's id order (None: same order)."""
    if not paths:
        raise ValueError("the ensemble needs at least one member")
    first = load_embeddings(paths[0])
    audio_ids, caption_ids = first.audio_ids, first.caption_ids
    members: list[AlignedMember] = [(first, None, None)]
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


def aligned_rows(array: np.ndarray, perm: np.ndarray | None, rows: slice) -> np.ndarray:
    """Rows ``rows`` of ``array`` in the aligned id order (``perm`` from ``align_members``), as float32."""
    return np.asarray(array[rows] if perm is None else array[perm[rows]], np.float32)


def ensemble_similarities(paths: list[str | Path], block: int = 2048) -> tuple[np.ndarray, list[str], list[str]]:
    """Dense C-hat = mean of the members' similarities, aligned by ids (members may order rows differently)."""
    audio_ids, caption_ids, members = align_members(paths)
    out = np.zeros((len(audio_ids), len(caption_ids)), np.float32)
    by_product = [(m, a, c) for m, a, c in members if m.similarity is None]
    texts = [aligned_rows(m.text_emb, c, slice(None)) for m, _, c in by_product]
    for rows in row_slices(block, len(audio_ids)):
        if by_product:
            out[rows] = mean_block([aligned_rows(m.audio_emb, a, rows) for m, a, _ in by_product], texts,
                                   slice(None), slice(None)) * np.float32(len(by_product))
        for m, a, c in members:
            if m.similarity is not None:  # text-aware pooling: the stored matrix, reordered onto the id order
                part = aligned_rows(m.similarity, a, rows)
                out[rows] += part if c is None else part[:, c]
    out /= np.float32(len(members))
    return out, audio_ids, caption_ids
