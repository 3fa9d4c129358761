"""Issue 16's speed levers change no result beyond float precision: validation every k epochs, the lazily
loaded frozen text encoder, the channels-last CNN, length-sorted text features and encoder-based padding."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from salsa2.config.params import TrainParams
from salsa2.features.splits import PAD_MULTIPLE, collate_mels, pad_multiple_of
from salsa2.model.encoders import AUDIO_ENCODERS, TEXT_ENCODERS
from salsa2.model.encoders.lazy_text import LazyTextEncoder
from salsa2.audio.frontends import FrontendConfig
from salsa2.model.dual_encoder import DualEncoder, ModelConfig
from salsa2.features.text_cache import compute_text_features
from salsa2.training.loop import fit, load_trained_state, trained_state, validates
from helpers import REPO
from helpers.tiny import tiny_data, tiny_model

MEL64 = FrontendConfig(n_mels=64, f_max=8000.0)


def test_validates_every_k_epochs_and_always_the_last():
    assert [e for e in range(10) if validates(e, 10, 2)] == [1, 3, 5, 7, 9]
    assert [e for e in range(5) if validates(e, 5, 2)] == [1, 3, 4]
    assert [e for e in range(3) if validates(e, 3, 1)] == [0, 1, 2]


def test_fit_keeps_the_best_validated_epoch_only():
    train, store = tiny_data(20, seed=0)
    val, _ = tiny_data(8, seed=0)
    model = tiny_model()
    cfg = TrainParams(epochs=5, batch_size=6, lr=3e-3, device="cpu", validate_every=2)
    result = fit(model, _nt_xent(), train, val, cfg, audio_lr=3e-3, text_lr=0.0, text_features=store)
    validated = [r["epoch"] for r in result.history if "val/t2a/mAP@10" in r]
    assert validated == [1, 3, 4]
    assert result.best_epoch in validated
    best = max(r["val/t2a/mAP@10"] for r in result.history if "val/t2a/mAP@10" in r)
    assert result.best_val["t2a/mAP@10"] == best


def test_fit_rejects_validate_every_zero():
    train, store = tiny_data(8, seed=0)
    with pytest.raises(ValueError, match="validate_every"):
        fit(tiny_model(), _nt_xent(), train, train, TrainParams(epochs=1, device="cpu", validate_every=0),
            audio_lr=1e-3, text_lr=0.0, text_features=store)


def _nt_xent():
    from salsa2.training.losses import LOSSES

    return LOSSES.build("nt_xent", tau=0.05)


def _minilm_cfg(trainable_layers: int) -> ModelConfig:
    return ModelConfig(audio_arch="small_mobilenet1d", frontend=MEL64, text_model="minilm", embed_dim=16,
                       audio_kwargs={"width": 0.25, "out_dim": 32},
                       text_kwargs={"max_length": 32, "trainable_layers": trainable_layers})


@pytest.fixture(scope="module")
def minilm():
    return TEXT_ENCODERS.build("minilm", max_length=32, trainable_layers=0)


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


def test_training_state_of_another_model_is_refused():
    state = trained_state(tiny_model())
    state["audio_proj.extra"] = torch.zeros(1)
    with pytest.raises(RuntimeError, match="unexpected"):
        load_trained_state(tiny_model(), state)
    del state["audio_proj.extra"], state["audio_proj.weight"]
    with pytest.raises(RuntimeError, match="missing"):
        load_trained_state(tiny_model(), state)


def test_trainable_text_encoder_is_built_eagerly(minilm):
    model = DualEncoder(_minilm_cfg(1))
    assert not isinstance(model.text_encoder, LazyTextEncoder)
    assert any(k.startswith("text_encoder.") for k in trained_state(model))


def test_length_sorted_text_features_equal_unsorted(minilm):
    texts = ["a", "a long caption about a car passing by on a wet street at night", "birds sing",
             "someone types on a keyboard quickly", "water", "a man speaks and a door closes loudly behind him"]
    got = compute_text_features(minilm, texts, batch_size=2)
    with torch.no_grad():
        want = np.concatenate([minilm.encode(texts[s : s + 2]).numpy() for s in range(0, len(texts), 2)])
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)  # float32: batch composition moves the last bits


@pytest.mark.parametrize("train_mode", [False, True])
def test_channels_last_cnn_computes_the_1d_cnn(train_mode):
    torch.manual_seed(0)
    plain = AUDIO_ENCODERS.build("small_mobilenet1d", frontend=MEL64, width=0.5, out_dim=32)
    fast = AUDIO_ENCODERS.build("small_mobilenet1d", frontend=MEL64, width=0.5, out_dim=32, channels_last=True)
    fast.load_state_dict(plain.state_dict())  # a checkpoint of the 1D variant loads
    plain.train(train_mode)
    fast.train(train_mode)
    mel = torch.randn(4, 64, 250) - 4.5
    lengths = torch.tensor([250, 200, 97, 31])
    (a, wa), (b, wb) = plain(mel, lengths), fast(mel, lengths)
    assert a.shape == b.shape == (4, 16, 32)
    assert torch.equal(wa, wb)
    torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)


def test_channels_last_is_only_for_the_1d_cnn():
    from salsa2.model.encoders.small_cnn import SmallMobileNet

    with pytest.raises(ValueError, match="channels_last"):
        SmallMobileNet(MEL64, dims=2, channels_last=True)


def test_training_batches_pad_to_what_the_encoder_needs():
    cnn = AUDIO_ENCODERS.build("small_mobilenet1d", frontend=MEL64)
    transformer = AUDIO_ENCODERS.build("small_transformer", frontend=MEL64)
    assert pad_multiple_of(cnn) == 32 and pad_multiple_of(transformer) == 32
    assert pad_multiple_of(torch.nn.Linear(1, 1)) == PAD_MULTIPLE  # undeclared: the old policy
    mels = [np.zeros((64, 130), np.float32), np.ones((64, 40), np.float32)]
    mel, lengths = collate_mels(mels, pad_multiple=32)
    assert mel.shape == (2, 64, 160) and lengths.tolist() == [130, 40]
    assert collate_mels(mels)[0].shape[-1] == 256


def test_demo_transformer_has_no_dropout():
    from salsa2.config.params import load_params

    kwargs = load_params(REPO / "params.yaml")["audio_encoders"]["transformer"]["kwargs"]
    enc = AUDIO_ENCODERS.build("small_transformer", frontend=MEL64, **kwargs)
    rates = [m.p for m in enc.modules() if isinstance(m, torch.nn.Dropout)]
    assert rates and all(p == 0.0 for p in rates)


def test_interrupted_fit_resumes_bit_identically_with_validation_every_2(tmp_path):
    """In-process twin of test_resume (no subprocess start-up): stop after epoch 1's checkpoint, re-run."""
    from salsa2.training.resume import ResumeState

    train, store = tiny_data(20, seed=0)
    val, _ = tiny_data(8, seed=0)
    cfg = TrainParams(epochs=4, batch_size=6, lr=3e-3, warmup_epochs=0.5, max_seconds=1.0, device="cpu",
                      validate_every=2)

    def run(root, stop_at=None):
        def on_epoch(epoch, record):
            if epoch == stop_at:
                raise KeyboardInterrupt
        model = tiny_model(dropout=0.1)
        result = fit(model, _nt_xent(), train, val, cfg, audio_lr=1e-3, text_lr=0.0, text_features=store,
                     on_epoch=on_epoch, checkpointer=ResumeState("tiny", "key0", root))
        return model, result

    straight, want = run(tmp_path / "a")
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "b", stop_at=1)
    resumed, got = run(tmp_path / "b")
    assert got.best_epoch == want.best_epoch and got.best_val == want.best_val
    for key, value in straight.state_dict().items():
        assert torch.equal(resumed.state_dict()[key], value), key
