"""Where a checkpoint lies: a folder path, or the name of a released model imported into ``models/released/<name>``
(stage ``release@<name>`` or ``salsa2 release``), so ``salsa2 index --model passt_roberta`` works after one
download. Released models are named ``released-<name>`` where they sit beside trained ones (the evaluate stage's
metrics, ``stage2.teachers``)."""

from __future__ import annotations

from pathlib import Path

from salsa2.audio.frontend_config import FrontendConfig
from salsa2.utils.errors import UserError
from salsa2.utils.fsutil import read_json

RELEASED_DIR = Path("models/released")  # the release stage's outputs, relative to the project root
RELEASED_PREFIX = "released-"


class CheckpointNotFound(UserError, FileNotFoundError):
    """Neither a checkpoint folder nor an imported released model of that name."""


def is_checkpoint(path: str | Path) -> bool:
    return (Path(path) / "config.json").is_file()


def released_name(member: str) -> str | None:
    """``passt_roberta`` for ``released-passt_roberta``; None for any other name."""
    if not member.startswith(RELEASED_PREFIX):
        return None
    return member[len(RELEASED_PREFIX):] or None


def released_path(name: str, released_dir: str | Path = RELEASED_DIR) -> Path:
    """The checkpoint folder of released model ``name`` (``released-<name>`` or ``<name>``), checked to exist."""
    name = released_name(name) or name
    path = Path(released_dir) / name
    if not is_checkpoint(path):
        raise CheckpointNotFound(
            f"{path}: released model {name!r} is not imported; run `dvc repro release@{name}` (params "
            f"released.{name}) or `salsa2 release PART... --out {path}`")
    return path


def find_checkpoint(spec: str | Path, released_dir: str | Path = RELEASED_DIR) -> Path:
    """``spec`` when it is a checkpoint folder, else the released model of that name under ``released_dir``."""
    path = Path(spec)
    if is_checkpoint(path):
        return path
    name = released_name(str(spec)) or str(spec)
    if "/" not in name and "\\" not in name and is_checkpoint(Path(released_dir) / name):
        return Path(released_dir) / name
    if path.is_dir():
        raise CheckpointNotFound(f"{path}: not a salsa2 checkpoint (no config.json); pass a folder such as "
                                 "models/stage2/cnn or the name of a released model")
    if name != path.name or path.is_absolute():  # a path, not a name: the checkpoint loader says where it came from
        return path
    raise CheckpointNotFound(
        f"{spec}: no such checkpoint folder, and no released model {name!r} in {released_dir}; pass a folder "
        f"such as models/stage2/cnn, or import the release first (`dvc repro release@{name}` or `salsa2 release`)")


def checkpoint_frontend(path: str | Path) -> FrontendConfig:
    """The frontend a checkpoint reads, from its config.json alone (no weights loaded): which cache it needs."""
    info = read_json(Path(path) / "config.json")
    if not isinstance(info, dict) or not isinstance(info.get("model", {}).get("frontend"), dict):
        raise CheckpointNotFound(f"{path}/config.json: no model.frontend; not a salsa2 checkpoint")
    return FrontendConfig(**info["model"]["frontend"])
