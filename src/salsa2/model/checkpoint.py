"""Model checkpoints: ``model.safetensors`` (weights) + ``config.json`` (how to rebuild it, what it scored).

A frozen text encoder's weights are not stored (they are rebuilt from their source), so a demo checkpoint
is a few MB.
"""

from __future__ import annotations

from pathlib import Path

from safetensors.torch import load_file, save_file

from salsa2.model.encoders import AUDIO_ENCODERS
from salsa2.utils.fsutil import atomic_path, read_json, write_json
from salsa2.model.dual_encoder import DualEncoder, ModelConfig


def save_checkpoint(out_dir: str | Path, model: DualEncoder, info: dict | None = None) -> None:
    out_dir = Path(out_dir)
    frozen_text = model.text_encoder.frozen
    state = {
        k: v.detach().cpu().contiguous()
        for k, v in model.state_dict().items()
        if not (frozen_text and k.startswith("text_encoder."))
    }
    with atomic_path(out_dir / "model.safetensors") as tmp:
        save_file(state, str(tmp))
    write_json(out_dir / "config.json", {"model": model.cfg.to_dict(), "text_frozen": frozen_text, **(info or {})})


def load_checkpoint(path: str | Path) -> tuple[DualEncoder, dict]:
    """Rebuild a DualEncoder from a checkpoint directory; returns the model (eval mode) and its info."""
    path = Path(path)
    if not (path / "config.json").exists():
        raise FileNotFoundError(f"{path}: not a salsa2 checkpoint (no config.json); train it with `dvc repro`")
    info = read_json(path / "config.json")
    assert isinstance(info, dict)
    cfg = ModelConfig.from_dict(info["model"])
    audio = None
    if "weights" in cfg.audio_kwargs:  # the saved state replaces pretrained weights: do not fetch them
        kwargs = {**cfg.audio_kwargs, "weights": "none"}
        audio = AUDIO_ENCODERS.build(cfg.audio_arch, frontend=cfg.frontend, **kwargs)
    model = DualEncoder(cfg, audio_encoder=audio)
    state = load_file(str(path / "model.safetensors"))
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not (info.get("text_frozen") and k.startswith("text_encoder."))]
    if missing or unexpected:
        raise RuntimeError(f"{path}: checkpoint does not match the architecture: missing {missing[:5]}, "
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
