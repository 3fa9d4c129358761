"""A frozen text encoder is built lazily (salsa2.model.encoders.lazy_text): not loaded for training on cached
features, left out of the trained state, bit-identical weights otherwise; a trainable one is built eagerly."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from salsa2.model.encoders import TEXT_ENCODERS
from salsa2.model.encoders.lazy_text import LazyTextEncoder
from salsa2.audio.frontends import FrontendConfig
from salsa2.model.dual_encoder import DualEncoder, ModelConfig
from salsa2.training.loop import load_trained_state, trained_state

MEL64 = FrontendConfig(n_mels=64, f_max=8000.0)


def _minilm_cfg(trainable_layers: int) -> ModelConfig:
    return ModelConfig(audio_arch="small_mobilenet1d", frontend=MEL64, text_model="minilm", embed_dim=16,
                       audio_kwargs={"width": 0.25, "out_dim": 32},
                       text_kwargs={"max_length": 32, "trainable_layers": trainable_layers})


def test_frozen_text_encoder_is_not_loaded_and_weights_are_bit_identical(minilm):
    torch.manual_seed(3)
    lazy = DualEncoder(_minilm_cfg(0))
    assert isinstance(lazy.text_encoder, LazyTextEncoder) and not lazy.text_encoder.loaded
    assert not any(k.startswith("text_encoder.") for k in lazy.state_dict())
    torch.manual_seed(3)
    eager = DualEncoder(_minilm_cfg(0), text_encoder=TEXT_ENCODERS.build("minilm", max_length=32,
                                                                         trainable_layers=0))
    eager_state = trained_state(eager)
    assert set(lazy.state_dict()) == set(eager_state)  # resume files hold no MiniLM weights
    for k, v in lazy.state_dict().items():
        assert torch.equal(v, eager_state[k]), k
    load_trained_state(lazy, eager.state_dict())  # an older resume state with MiniLM's weights still loads
    assert not lazy.text_encoder.loaded
    # Free text still works: the encoder is built on first use and matches the eager one.
    texts = ["a dog barks", "rain falls on a tin roof while thunder rumbles far away"]
    lazy.eval()
    eager.eval()
    with torch.no_grad():
        got = lazy.encode_text(texts)
        want = eager.encode_text(texts)
    assert lazy.text_encoder.loaded
    assert torch.allclose(got, want, atol=1e-6)
    assert set(trained_state(lazy)) == set(eager_state)  # still excluded once loaded


def test_trainable_text_encoder_is_built_eagerly(minilm):
    model = DualEncoder(_minilm_cfg(1))
    assert not isinstance(model.text_encoder, LazyTextEncoder)
    assert any(k.startswith("text_encoder.") for k in trained_state(model))


def test_frozen_text_encoder_reports_its_limit_and_a_long_query_is_warned_of(minilm):
    from salsa2.search.inference import SearchModel
    from salsa2.search.query import query_warnings

    cfg = _minilm_cfg(0)
    model = DualEncoder(dataclasses.replace(cfg, text_kwargs={**cfg.text_kwargs, "max_length": 24})).eval()
    assert model.text_encoder.max_length == 24 and not model.text_encoder.loaded  # known without loading MiniLM
    found = SearchModel("m", Path("m"), model, {}, "id", "spaces")
    warnings = query_warnings({"m": found}, ["a dog barks and " * 625])  # 10,000 characters
    assert len(warnings) == 1 and "model m reads only the first 24" in warnings[0], warnings
    assert model.text_encoder.max_length == 24  # the built encoder's own
    assert query_warnings({"m": found}, ["a dog barks"]) == []
