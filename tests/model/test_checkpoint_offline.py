"""A checkpoint folder is self-contained: a trained Hugging Face text encoder is rebuilt from the tokenizer and
model config saved beside the weights (``text/``, salsa2.model.checkpoint), without its source folder or the hub.

The source is a tiny random RoBERTa with MiniLM's tokenizer in a folder (tests/helpers/released_model.py),
registered as a text encoder; each test renames that folder away before loading and sets ``HF_HUB_OFFLINE=1``.
Same weights and same code: the embeddings are compared exactly.
"""

from __future__ import annotations

import contextlib
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from helpers.released_model import build_released, tiny_roberta
from salsa2.audio.frontends import FrontendConfig
from salsa2.model.checkpoint import TEXT_DIR, load_checkpoint, save_checkpoint
from salsa2.model.dual_encoder import DualEncoder, ModelConfig
from salsa2.utils.errors import UserError

pytest.importorskip("transformers")

OFFLINE_TEXT = "tiny-roberta-offline-test"
CAPTIONS = ["a dog barks, then rain", "birds chirp in the distance while a car passes by slowly"]


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    """The text encoder's source folder (registered once per process as ``OFFLINE_TEXT``)."""
    return Path(tiny_roberta(tmp_path_factory.mktemp("tiny_roberta"), OFFLINE_TEXT))


@contextlib.contextmanager
def gone(folder: Path, monkeypatch) -> Iterator[None]:
    """``folder`` renamed away and the hub switched off, restored afterwards (other tests build from it)."""
    aside = folder.with_name(folder.name + ".aside")
    folder.rename(aside)
    with monkeypatch.context() as patch:
        patch.setenv("HF_HUB_OFFLINE", "1")
        try:
            yield
        finally:
            aside.rename(folder)


def _model(trainable_layers: int, text_model: str = OFFLINE_TEXT) -> DualEncoder:
    torch.manual_seed(0)
    cfg = ModelConfig(audio_arch="small_mobilenet1d", frontend=FrontendConfig(n_mels=64, f_max=8000.0),
                      text_model=text_model, embed_dim=16, audio_kwargs={"width": 0.25, "out_dim": 32},
                      text_kwargs={"max_length": 16, "trainable_layers": trainable_layers})
    model = DualEncoder(cfg).eval()
    with torch.no_grad():  # trained weights differ from the source's: the checkpoint's must be the ones used
        for p in model.text_encoder.parameters():
            p.add_(0.01 * torch.randn_like(p))
    return model


def _embed(model: DualEncoder) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    mel, lengths = torch.randn(2, 64, 120, generator=gen), torch.tensor([120, 80])
    with torch.no_grad():
        return model.encode_text(CAPTIONS), model.encode_audio(mel, lengths)


def test_trained_text_encoder_loads_with_its_source_gone(source, tmp_path, monkeypatch):
    model = _model(trainable_layers=-1)
    save_checkpoint(tmp_path / "ckpt", model, {"text_normalize": True})
    text_dir = tmp_path / "ckpt" / TEXT_DIR
    assert sum(f.stat().st_size for f in text_dir.iterdir()) < 5_000_000  # tokenizer + config, no weights
    with gone(source, monkeypatch):
        loaded, info = load_checkpoint(tmp_path / "ckpt")
    assert not info["text_frozen"] and loaded.text_encoder.name == str(source)
    assert (loaded.text_encoder.pooling, loaded.text_encoder.max_length) == ("cls", 16)
    assert not loaded.text_encoder.frozen  # trainable as saved
    tokens, tokens_loaded = model.text_encoder.tokenize(CAPTIONS), loaded.text_encoder.tokenize(CAPTIONS)
    assert tokens.keys() == tokens_loaded.keys() and all(torch.equal(tokens[k], tokens_loaded[k]) for k in tokens)
    for ours, theirs in zip(_embed(model), _embed(loaded)):
        assert torch.equal(ours, theirs)


def test_checkpoint_without_text_folder_loads_from_the_source(source, tmp_path, monkeypatch):
    model = _model(trainable_layers=-1)
    save_checkpoint(tmp_path / "ckpt", model)
    shutil.rmtree(tmp_path / "ckpt" / TEXT_DIR)  # as written by salsa2 versions without it
    loaded, _ = load_checkpoint(tmp_path / "ckpt")
    for ours, theirs in zip(_embed(model), _embed(loaded)):
        assert torch.equal(ours, theirs)
    with gone(source, monkeypatch), pytest.raises(UserError, match="cannot load text model"):
        load_checkpoint(tmp_path / "ckpt")


def test_frozen_text_encoder_writes_no_text_folder(source, tmp_path):
    """Frozen text weights are not saved (rebuilt from their source), so neither is the rest; a stale folder of an
    earlier save into the same place goes."""
    save_checkpoint(tmp_path / "ckpt", _model(trainable_layers=-1))
    assert (tmp_path / "ckpt" / TEXT_DIR).is_dir()
    save_checkpoint(tmp_path / "ckpt", _model(trainable_layers=0, text_model="minilm"))
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == ["config.json", "model.safetensors"]
    loaded, info = load_checkpoint(tmp_path / "ckpt")
    assert info["text_frozen"] and loaded.text_encoder.frozen


def test_damaged_text_folder_names_it(source, tmp_path, monkeypatch):
    save_checkpoint(tmp_path / "ckpt", _model(trainable_layers=-1))
    config = tmp_path / "ckpt" / TEXT_DIR / "config.json"
    config.write_text("{not json")
    with gone(source, monkeypatch), pytest.raises(UserError) as err:
        load_checkpoint(tmp_path / "ckpt")
    text = str(err.value)
    assert "\n" not in text and f"{TEXT_DIR}: cannot rebuild the text encoder" in text, text
    assert "config.json" in text and "damaged" in text, text


@pytest.mark.slow  # PaSST at its real size
def test_imported_release_loads_with_its_text_source_gone(source, tmp_path, monkeypatch):
    from salsa2.model.release_import import import_salsa_release

    released = build_released(tmp_path / "passt_roberta.ckpt", str(source))
    out = import_salsa_release(released["path"], tmp_path / "salsa_release", text_model=OFFLINE_TEXT, sha256=False)
    assert json.loads((out / TEXT_DIR / "encoder.json").read_text())["pooling"] == "cls"
    online, _ = load_checkpoint(out)
    with gone(source, monkeypatch):
        offline, info = load_checkpoint(out)
    assert info["trained_on"]["file"] == "passt_roberta.ckpt"
    with torch.no_grad():
        assert torch.equal(online.encode_text(CAPTIONS), offline.encode_text(CAPTIONS))
        gen = torch.Generator().manual_seed(2)
        mel = torch.randn(1, 128, 400, generator=gen)
        lengths = torch.tensor([400])
        assert torch.equal(online.encode_audio(mel, lengths), offline.encode_audio(mel, lengths))
