"""salsa2's text path, losses and LR schedule against the authors' code (OptimusPrimus/salsa 983b450).

Reference outputs: tests/fixtures/reference_text_loss.{npz,json}, made by
tests/fixtures/make_reference_text_loss.py from the authors' own functions on hand-made inputs (a tiny
RobertaConfig stands in for roberta-large; every tensor is drawn from a generator seeded by its key name, on
both sides). Tokenisation is compared from token ids onward, the normalisation on strings.
"""

import importlib.util
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from helpers import FIXTURES
from salsa2.training.losses.distill import DistillLoss
from salsa2.training.losses.ntxent import NTXentLoss
from salsa2.data.text_norm import normalize_for_model
from salsa2.training.loop import lr_factor

META = json.loads((FIXTURES / "reference_text_loss.json").read_text())
REF = np.load(FIXTURES / "reference_text_loss.npz")


def _maker():
    spec = importlib.util.spec_from_file_location("make_reference_text_loss",
                                                  FIXTURES / "make_reference_text_loss.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_caption_normalisation_is_the_authors():
    got = [normalize_for_model(c, "authors") for c in META["captions"]]
    assert got == META["normalized"]  # "man's" -> "mans", "high-pitched" -> "highpitched", " - " -> two spaces
    assert normalize_for_model("A man's dog", "spaces") == "a man s dog"  # the "spaces" mode: punctuation to spaces


def test_roberta_builder_uses_the_authors_dropout_and_drops_the_pooler(monkeypatch):
    from salsa2.model.encoders import text

    seen = {}
    monkeypatch.setattr(text, "HFTextEncoder", lambda name, **kw: seen.update(kw, name=name))
    text.build_roberta_large()
    assert seen["name"] == "roberta-large" and seen["pooling"] == "cls"
    assert seen["dropout"] == 0.2 and seen["pooler"] is False
    kwargs = META["from_pretrained_kwargs"]
    assert kwargs["hidden_dropout_prob"] == kwargs["attention_probs_dropout_prob"] == seen["dropout"]
    assert kwargs["add_pooling_layer"] is seen["pooler"]


def test_roberta_text_path_matches_the_authors(tmp_path):
    transformers = pytest.importorskip("transformers")
    from salsa2.model.encoders.text import HFTextEncoder, minilm_path

    maker = _maker()
    transformers.RobertaModel(transformers.RobertaConfig(**META["tiny_roberta"])).save_pretrained(tmp_path)
    transformers.AutoTokenizer.from_pretrained(minilm_path()).save_pretrained(tmp_path)  # loaded, not used
    enc = HFTextEncoder(str(tmp_path), pooling="cls", max_length=32, dropout=0.2, pooler=False)
    assert enc.model.config.hidden_dropout_prob == 0.2 and enc.model.config.attention_probs_dropout_prob == 0.2
    assert not any(k.startswith("pooler.") for k in enc.model.state_dict()) and not META["has_pooler"]
    maker.seeded_state(enc.model, "text.")
    proj = torch.nn.Linear(enc.out_dim, META["embed_dim"])
    maker.seeded_state(proj, "project_sentence.")
    enc.eval()
    ids, mask = maker.padded(maker.TOKEN_IDS, max(len(r) for r in maker.TOKEN_IDS))  # salsa2 pads to the longest
    assert torch.equal(ids, torch.from_numpy(REF["text_token_ids"])[:, : ids.shape[1]])
    with torch.no_grad():
        ours = proj(enc({"input_ids": ids, "attention_mask": mask})).double()
    ref = torch.from_numpy(REF["text_embeddings"])
    cos = F.cosine_similarity(ours, ref, dim=-1)
    assert cos.min().item() >= 0.9999, cos
    assert torch.allclose(ours, ref, atol=1e-5)


def _batch():
    paths = META["paths"]
    positives = torch.tensor([[a == b for b in paths] for a in paths])
    audio = F.normalize(torch.from_numpy(REF["loss_audio"])[:, 0], dim=-1)
    text = F.normalize(torch.from_numpy(REF["loss_text"])[:, 0], dim=-1)
    return audio @ text.T, positives


def test_supervised_loss_matches_the_authors_with_several_captions_per_clip():
    sim, positives = _batch()
    assert positives.sum(1).tolist() == [1, 2, 2, 1, 2, 2]  # the weighting of positives matters here
    ours = NTXentLoss(META["tau"])(sim, positives)["nt_xent_loss"].item()
    assert ours == pytest.approx(META["losses"]["sup"], abs=1e-5)
    queries = NTXentLoss(META["tau"], positives="queries")(sim, positives)["nt_xent_loss"].item()
    assert abs(queries - META["losses"]["sup"]) > 1e-3  # the per-query weighting is a different loss


def test_distillation_loss_matches_the_authors():
    sim, positives = _batch()
    members_a = F.normalize(torch.from_numpy(REF["teacher_audio"]), dim=-1)  # (A, M, D)
    members_t = F.normalize(torch.from_numpy(REF["teacher_text"]), dim=-1)   # (T, M, D)
    teacher = torch.einsum("amd,tmd->atm", members_a, members_t).mean(-1)     # C-hat: mean member similarity
    ours = DistillLoss(tau=META["tau"], teacher_tau=META["tau"])(sim, positives, teacher)["distill_loss"].item()
    assert ours == pytest.approx(META["losses"]["dist"], abs=1e-5)


def test_schedule_matches_the_authors_command():
    s = META["schedule"]
    ours = np.array([s["lr"] * lr_factor(float(e), s["warmup_epochs"], s["epochs"], s["lr_min"] / s["lr"],
                                         s["cosine_epochs"]) for e in REF["schedule_epochs"]])
    np.testing.assert_allclose(ours, REF["schedule_lr"], rtol=1e-12, atol=1e-20)
    assert REF["schedule_lr"][REF["schedule_epochs"] >= 15.0].max() == pytest.approx(1e-7)  # held after epoch 15
