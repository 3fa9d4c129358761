"""Model checkpoints: ``model.safetensors`` (weights) + ``config.json`` (how to rebuild it, what it scored), and
``text/`` for a trained Hugging Face text encoder.

A frozen text encoder's weights are not stored (they are rebuilt from their source), so a demo checkpoint
is a few MB. A trained one's are, and ``text/`` holds the rest of it (tokenizer files, the transformer's
config.json: ``HFTextEncoder.save_source``), so the checkpoint loads without the text model's source folder or the
Hugging Face hub (the architecture is built from that config, no pretrained weights are fetched). A checkpoint
without ``text/`` rebuilds its text encoder from the registered source (hub or cache), then loads its weights.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from safetensors.torch import load_file, save_file

from salsa2.model.encoders import AUDIO_ENCODERS
from salsa2.model.encoders.text import SOURCE_FILE, HFTextEncoder
from salsa2.utils.errors import UserError
from salsa2.utils.fsutil import atomic_dir, atomic_path, read_json, write_json
from salsa2.model.dual_encoder import DualEncoder, ModelConfig

TEXT_DIR = "text"  # a trained text encoder's tokenizer and config, in the checkpoint folder


def save_checkpoint(out_dir: str | Path, model: DualEncoder, info: dict | None = None) -> None:
    out_dir = Path(out_dir)
    frozen_text = model.text_encoder.frozen
    state = {
        k: v.detach().cpu().contiguous()
        for k, v in model.state_dict().items()
        if not (frozen_text and k.startswith("text_encoder."))
    }
    _save_text_source(out_dir / TEXT_DIR, model.text_encoder, frozen_text)
    with atomic_path(out_dir / "model.safetensors") as tmp:
        save_file(state, str(tmp))
    write_json(out_dir / "config.json", {"model": model.cfg.to_dict(), "text_frozen": frozen_text, **(info or {})})


def _save_text_source(folder: Path, text_encoder, frozen: bool) -> None:
    """``folder`` = what rebuilds a trained Hugging Face text encoder offline; none (a stale one removed) for a
    frozen encoder, whose weights are not saved either."""
    encoder = getattr(text_encoder, "inner", None) or text_encoder  # a loaded LazyTextEncoder's HFTextEncoder
    if frozen or not isinstance(encoder, HFTextEncoder):
        if folder.is_dir():
            shutil.rmtree(folder)
        return
    with atomic_dir(folder) as tmp:
        encoder.save_source(tmp)


class CheckpointError(UserError, RuntimeError):
    """A checkpoint folder that cannot be loaded; the message names the file and the fix."""


def _origin_advice(path: Path) -> str:
    """How to get the checkpoint at ``path`` back: pipeline models are trained or fetched by DVC, others are
    given by where they are now."""
    parts = path.resolve().parts
    if "models" in parts:
        kind = parts[parts.index("models") + 1] if parts.index("models") + 1 < len(parts) else ""
        if kind in ("stage1", "stage2"):
            return "train it with `dvc repro`, or give the folder where it is now"
        if kind == "released":
            return f"fetch it with `dvc repro release@{path.name}`, or give the folder where it is now"
    return "give the folder where it is now (a salsa2 checkpoint: config.json and model.safetensors)"


def _load_text_source(path: Path, info: dict) -> HFTextEncoder | None:
    """The trained text encoder saved in ``path/text`` (random weights until the checkpoint's are loaded); None
    for a checkpoint without one (its text encoder comes from its source)."""
    folder = path / TEXT_DIR
    if info.get("text_frozen") or not (folder / SOURCE_FILE).is_file():
        return None
    try:
        return HFTextEncoder.from_source(folder)
    except Exception as err:  # noqa: BLE001 - json, transformers and tokenizers raise their own for damaged files
        reason = " ".join(str(err).split())[:200] or type(err).__name__
        raise CheckpointError(f"{folder}: cannot rebuild the text encoder ({reason}); the checkpoint is damaged: "
                              f"{_origin_advice(path)}") from None


def load_checkpoint(path: str | Path) -> tuple[DualEncoder, dict]:
    """Rebuild a DualEncoder from a checkpoint directory; returns the model (eval mode) and its info.

    Raises:
        CheckpointError: the folder is gone, is no salsa2 checkpoint, or a file in it is damaged (one line naming
            the file and the fix)."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: no such checkpoint folder; {_origin_advice(path)}")
    if not (path / "config.json").exists():
        raise CheckpointError(f"{path}: not a salsa2 checkpoint (no config.json); {_origin_advice(path)}")
    try:
        info = read_json(path / "config.json")
    except (ValueError, UnicodeError) as err:
        raise CheckpointError(f"{path / 'config.json'}: not JSON ({err}); the checkpoint is damaged: "
                              f"{_origin_advice(path)}") from None
    if not isinstance(info, dict) or not isinstance(info.get("model"), dict):
        keys = sorted(info) if isinstance(info, dict) else type(info).__name__
        raise CheckpointError(f"{path / 'config.json'}: no 'model' entry (has {keys}); it is not the config.json "
                              "salsa2 writes with a checkpoint: give a salsa2 checkpoint folder")
    try:
        cfg = ModelConfig.from_dict(info["model"])
    except (TypeError, KeyError, ValueError) as err:
        raise CheckpointError(f"{path / 'config.json'}: 'model' is not a salsa2 model config ({type(err).__name__}: "
                              f"{err}); give a salsa2 checkpoint folder") from None
    audio = None
    if "weights" in cfg.audio_kwargs:  # the saved state replaces pretrained weights: do not fetch them
        kwargs = {**cfg.audio_kwargs, "weights": "none"}
        audio = AUDIO_ENCODERS.build(cfg.audio_arch, frontend=cfg.frontend, **kwargs)
    model = DualEncoder(cfg, audio_encoder=audio, text_encoder=_load_text_source(path, info))
    weights = path / "model.safetensors"
    if not weights.is_file():
        raise CheckpointError(f"{weights}: missing; {_origin_advice(path)}")
    try:
        state = load_file(str(weights))
    except Exception as err:  # noqa: BLE001 - safetensors raises its own and OS errors for a damaged file
        reason = " ".join(str(err).split())[:200] or type(err).__name__
        raise CheckpointError(f"{weights}: cannot be read ({reason}); the file is damaged or incomplete: "
                              f"{_origin_advice(path)}") from None
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not (info.get("text_frozen") and k.startswith("text_encoder."))]
    if missing or unexpected:
        raise CheckpointError(f"{path}: checkpoint does not match the architecture: missing {missing[:5]}, "
                           f"unexpected {unexpected[:5]}")
    if info.get("text_frozen"):
        model.text_encoder.set_trainable_layers(0)
    model.eval()
    return model, info


def copy_weights(dst: DualEncoder, src_dir: str | Path) -> dict:
    """Initialise ``dst`` from a checkpoint (stage 2 starts from stage 1); returns the source's info."""
    src, info = load_checkpoint(src_dir)
    dst.load_state_dict(src.state_dict())
    return info
