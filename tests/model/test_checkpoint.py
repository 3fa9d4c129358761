"""Checkpoint folders that cannot be loaded end in one line naming the file and the fix (salsa2.model.checkpoint)."""

from __future__ import annotations

import json

import pytest
import torch

from salsa2.audio.frontends import FrontendConfig
from salsa2.model.checkpoint import load_checkpoint, save_checkpoint
from salsa2.model.dual_encoder import DualEncoder, ModelConfig
from salsa2.utils.errors import UserError


@pytest.fixture
def checkpoint(tmp_path):
    torch.manual_seed(0)
    cfg = ModelConfig(audio_arch="small_mobilenet1d", frontend=FrontendConfig(n_mels=64, f_max=8000.0),
                      text_model="minilm", embed_dim=16, audio_kwargs={"width": 0.25, "out_dim": 32},
                      text_kwargs={"max_length": 32, "trainable_layers": 0})
    folder = tmp_path / "elsewhere" / "mine"
    save_checkpoint(folder, DualEncoder(cfg), {"text_normalize": True})
    load_checkpoint(folder)  # whole: loads
    return folder


def _one_line(folder, *needles: str) -> str:
    with pytest.raises(UserError) as err:
        load_checkpoint(folder)
    text = str(err.value)
    assert "\n" not in text and all(n in text for n in needles), text
    return text


def test_damaged_weights_name_the_file(checkpoint):
    weights = checkpoint / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:200])  # cut short
    _one_line(checkpoint, "model.safetensors: cannot be read", "damaged or incomplete")
    weights.write_bytes(b"<html>not weights</html>")
    _one_line(checkpoint, "model.safetensors: cannot be read")


def test_config_without_model_names_the_file(checkpoint):
    config = checkpoint / "config.json"
    info = json.loads(config.read_text())
    config.write_text(json.dumps({k: v for k, v in info.items() if k != "model"}))
    _one_line(checkpoint, "config.json: no 'model' entry", "give a salsa2 checkpoint folder")
    config.write_text(json.dumps({**info, "model": {"audio_arch": "x"}}))
    _one_line(checkpoint, "config.json: 'model' is not a salsa2 model config")
    config.write_text("{not json")
    _one_line(checkpoint, "config.json: not JSON")


def test_a_deleted_checkpoint_from_elsewhere_is_not_told_to_train(checkpoint, tmp_path):
    import shutil

    shutil.rmtree(checkpoint)
    text = _one_line(checkpoint, "no such checkpoint folder", "give the folder where it is now")
    assert "dvc repro" not in text
    text = _one_line(tmp_path / "models" / "stage2" / "cnn", "no such checkpoint folder")
    assert "train it with `dvc repro`" in text
    text = _one_line(tmp_path / "models" / "released" / "passt_roberta")
    assert "dvc repro release@passt_roberta" in text
