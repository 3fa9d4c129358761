"""The authors' released PaSST + RoBERTa-large checkpoint imported as a salsa2 checkpoint folder.

A released-format file (tests/helpers/released_model.py): a Lightning-style dict (``state_dict`` + sacred
``hyper_parameters``) with the keys of OptimusPrimus/salsa experiments/ex_dcase24.py ``AudioRetrievalModel``; PaSST
at its real size (seeded), a tiny random RoBERTa (no pooler) with the offline MiniLM tokenizer standing in for
roberta-large. The imported folder, loaded with ``load_checkpoint``, must embed audio and captions as the
authors' inference does with the same weights: projection of the backbone outputs, L2-normalised.
"""

from __future__ import annotations

import math
import string

import pytest
import torch
import torch.nn.functional as F

from helpers.paper import PRESET
from helpers.released_model import PASST, TINY_TEXT, build_released
from helpers.released_model import tiny_roberta as make_tiny_roberta
from salsa2.audio.frontends import FrontendConfig
from salsa2.data.text_norm import normalize_for_model
from salsa2.model.checkpoint import load_checkpoint
from salsa2.model.provenance import demo_only_warning
from salsa2.model.release_import import KALDI128, ReleaseImportError, import_salsa_release
from salsa2.utils.errors import UserError

transformers = pytest.importorskip("transformers")

FRONTEND = FrontendConfig(**KALDI128)
CAPTIONS = ["A dog's bark, then RAIN!", "birds chirp in the distance; a car passes by slowly"]


@pytest.fixture(scope="module")
def tiny_roberta(tmp_path_factory) -> str:
    return make_tiny_roberta(tmp_path_factory.mktemp("tiny_roberta"))


@pytest.fixture(scope="module")
def released(tiny_roberta, tmp_path_factory) -> dict:
    """The released-format checkpoint file, its modules (for direct computation) and its state dict."""
    return build_released(tmp_path_factory.mktemp("release") / "passt_roberta.ckpt", tiny_roberta)


@pytest.fixture(scope="module")
def imported(released, tmp_path_factory):
    out = tmp_path_factory.mktemp("imported") / "salsa_release"
    assert import_salsa_release(released["path"], out, text_model=TINY_TEXT) == out
    model, info = load_checkpoint(out)
    return out, model, info


def test_frontend_is_the_paper_presets_kaldi128():
    assert KALDI128 == PRESET["frontends"]["kaldi128"]


def test_config_records_provenance_and_the_authors_text_path(imported, released):
    out, model, info = imported
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "model.safetensors", "text"]
    assert info["text_normalize"] == "authors" and not info["text_frozen"]
    trained = info["trained_on"]
    assert trained["source"] == "https://github.com/OptimusPrimus/salsa" and trained["file"] == "passt_roberta.ckpt"
    assert len(trained["sha256"]) == 64 and trained["train_on"] == "clothov2" and trained["synthetic_only"] is False
    assert demo_only_warning(info, "salsa_release") is None
    assert info["released"]["tau"] == pytest.approx(0.05)
    assert info["released"]["hyper_parameters"] == released["hyper"]
    cfg = model.cfg
    assert (cfg.audio_arch, cfg.embed_dim, cfg.pooling) == ("passt", 1024, "mean")
    assert cfg.audio_kwargs["snippet_seconds"] == 10.0 and model.audio_encoder.min_snippet_frames == 1
    assert cfg.text_kwargs["max_length"] == 32 and model.text_encoder.pooling == "cls"


def _mel(seconds: tuple[float, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    from salsa2.audio.frontends import LogMel

    logmel = LogMel(FRONTEND)
    gen = torch.Generator().manual_seed(3)
    mels = [logmel(0.1 * torch.randn(int(s * FRONTEND.sample_rate), generator=gen)[None])[0] for s in seconds]
    lengths = torch.tensor([m.shape[-1] for m in mels])
    mel = torch.full((len(mels), FRONTEND.n_mels, int(lengths.max())), math.log(FRONTEND.log_offset))
    for i, m in enumerate(mels):
        mel[i, :, : m.shape[-1]] = m
    return mel, lengths


def _direct_audio(released: dict, mel: torch.Tensor, audio_frames: int) -> torch.Tensor:
    """The authors' audio path on one clip: 10 s snippets filled with silence, PaSST's (cls + dist) / 2 per
    snippet, the mean over the ceil(audio / 10 s) snippets holding audio, ``project_audio``, L2 normalisation."""
    n = math.ceil(audio_frames / 1000)
    padded = torch.full((FRONTEND.n_mels, n * 1000), math.log(FRONTEND.log_offset))
    width = min(mel.shape[-1], n * 1000)
    padded[:, :width] = mel[:, :width]
    x = (padded.reshape(FRONTEND.n_mels, n, 1000).permute(1, 0, 2)[:, None] - FRONTEND.norm_mean) / FRONTEND.norm_std
    features = released["passt"](x)[1]
    return F.normalize(released["project_audio"](features.mean(0)), dim=-1)


def test_audio_embeddings_equal_the_direct_computation(imported, released):
    _, model, _ = imported
    mel, lengths = _mel((15.0, 20.1))
    with torch.no_grad():
        got = model.encode_audio(mel, lengths)
        _, weights = model.audio_encoder(mel, lengths)
        tail = FRONTEND.tail_frames
        want = torch.stack([_direct_audio(released, mel[i, :, : int(lengths[i])], int(lengths[i]) - tail)
                            for i in range(2)])
    # 20.1 s: the authors count ceil(20.1 / 30 x 3) = 3 snippets; salsa2's default would drop the 0.1 s one
    assert (weights > 0).sum(1).tolist() == [2, 3]
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def test_text_embeddings_equal_the_authors_forward_sentence(imported, released):
    _, model, info = imported
    with torch.no_grad():
        got = model.encode_text([normalize_for_model(c, info["text_normalize"]) for c in CAPTIONS])
        # OptimusPrimus/salsa ex_dcase24.forward_sentence: lower, punctuation deleted, padded to 32, first token
        captions = [c.lower().translate(str.maketrans("", "", string.punctuation)) for c in CAPTIONS]
        tokens = model.text_encoder.tokenizer(captions, add_special_tokens=True, padding="max_length",
                                              return_tensors="pt", max_length=32, truncation=True)
        first = released["roberta"](input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"])[0][:, 0]
        want = F.normalize(released["project_sentence"](first), dim=-1)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def _save(path, state: dict) -> None:
    torch.save({"state_dict": state, "hyper_parameters": {}}, path)


@pytest.mark.parametrize("case,match", [
    ("missing", r"missing 1 weights .*\(project_sentence.0.bias\)"),
    ("unexpected", "unexpected key 'audio_sequence.0.linear1.weight'"),
    ("other_encoder", r"missing \d+ weights .*\(audio_embedding_model.model.model.blocks.0"),
    ("extra_passt", r"another architecture \(audio_embedding_model.model.model.blocks.12.norm1.weight\)"),
    ("shape", r"project_audio.0.weight has shape \(512, 768\), .* expects \(1024, 768\)"),
])
def test_refusals_name_the_file_and_write_nothing(released, tmp_path, case, match):
    state = dict(released["state"])
    if case == "missing":
        del state["project_sentence.0.bias"]
    elif case == "unexpected":
        state["audio_sequence.0.linear1.weight"] = torch.zeros(2048, 768)
    elif case == "other_encoder":  # an EfficientAT release names its layers differently
        state = {k.replace(PASST + "blocks.0.", PASST + "conv.0."): v for k, v in state.items()}
    elif case == "extra_passt":
        state[PASST + "blocks.12.norm1.weight"] = torch.zeros(768)
    else:
        state["project_audio.0.weight"] = torch.zeros(512, 768)
    path = tmp_path / "broken.ckpt"
    _save(path, state)
    out = tmp_path / "out"
    with pytest.raises(ReleaseImportError, match=match) as err:
        import_salsa_release(path, out, text_model=TINY_TEXT, sha256=False)
    assert isinstance(err.value, UserError) and str(path) in str(err.value) and "\n" not in str(err.value)
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["broken.ckpt"]


def test_refuses_an_occupied_folder(released, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(ReleaseImportError, match="not a salsa2 checkpoint folder"):
        import_salsa_release(released["path"], out, text_model=TINY_TEXT, sha256=False)
    assert [p.name for p in out.iterdir()] == ["notes.txt"]
