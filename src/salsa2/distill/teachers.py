"""C-hat, the mean of the teachers' similarities (Primus et al. 2024, sec. 3), once per distinct teacher set
(``stage2.teachers``: ``all`` gives one set shared by every student, ``self`` one per student). The file of a
set is ``<targets_dir>/<members joined by '+'>.npz``, in the order of ``encoders``. Torch-free: stage ensemble
embeds with ``salsa2.distill.similarities`` first, stage2 only looks up ``targets_path``."""

from __future__ import annotations

import logging
from pathlib import Path

from salsa2.config.params import Params
from salsa2.distill.targets import build_targets

log = logging.getLogger(__name__)


def teacher_members(params: Params, student: str) -> list[str]:
    """Which stage-1 models estimate the correspondences for ``student`` (``stage2.teachers``)."""
    teachers = params.stage2.teachers
    if teachers == "all":
        return list(params.encoders)
    if teachers == "self":
        return [student]
    members = [teachers] if isinstance(teachers, str) else list(teachers)
    unknown = [m for m in members if m not in params.encoders]
    if unknown:
        raise ValueError(f"stage2.teachers names {unknown}, which are not in encoders {params.encoders}")
    return members


def build_ensemble(params: Params, student: str, sims_dir, out_path) -> list[str]:
    """C-hat for ``student``: the mean of its teachers' similarities (Primus et al. 2024, sec. 3), stored as
    ``stage2.targets`` says (dense matrix or the members' embeddings; ``salsa2.distill.targets``)."""
    members = teacher_members(params, student)
    kind = build_targets([Path(sims_dir) / f"{m}.npz" for m in members], out_path, members, params.stage2.targets)
    log.info("targets for %s: %s storage, M=%d", student, kind, len(members))
    return members


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


def build_ensembles(params: Params, sims_dir: str | Path, targets_dir: str | Path) -> dict[str, list[str]]:
    """C-hat of every distinct teacher set into ``targets_dir`` (each computed once, however many students)."""
    sets = teacher_sets(params)
    Path(targets_dir).mkdir(parents=True, exist_ok=True)
    for name, members in sets.items():
        kind = build_targets([Path(sims_dir) / f"{m}.npz" for m in members], Path(targets_dir) / f"{name}.npz",
                             members, params.stage2.targets)
        log.info("targets %s: %s storage, M=%d", name, kind, len(members))
    return sets
