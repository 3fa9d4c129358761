"""Seeded checkpoints in the released formats, shared by the fixture scripts that run the source repositories' code
(tests/fixtures/make_released_reference.py, tests/fixtures/make_dcase2025_reference.py) and the equivalence test
(tests/model/test_release_equivalence.py).

Every float entry of a released state dict is ``seeded_weights.seeded_tensor(<released key>)``, so a checkpoint
built here from salsa2's modules (hear21passt's PaSST, transformers' RobertaModel, linear projections) equals, key by
key, the one the fixture script saved from the source repository's own model, and none needs to be committed. The
text model is a tiny RoBERTa (no pooler) with the offline MiniLM tokenizer standing in for roberta-large
(``tiny_text_folder``, registered as salsa2 text encoder ``TEXT_ENCODER[kind]``): 2 layers of width 32, or of
width 1024 for the DCASE 2025 baseline, whose text projection takes 1024 inputs whatever the text model.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch

from helpers.seeded_weights import seeded_tensor

SECONDS = (5.0, 10.0, 12.0, 20.0, 25.0, 30.0)  # both repositories crop longer clips at a random position
CAPTIONS = [
    "A dog's bark, then RAIN!",
    "birds chirp in the distance; a car passes by slowly",
    "Someone types on a keyboard... while a clock ticks",
    "a very long description of water running from a tap into a metal sink, then splashing and gurgling as the "
    "drain slowly empties and a person hums a tune nearby, all of it recorded in a small tiled bathroom",
]
TINY = dict(num_hidden_layers=2, num_attention_heads=4, intermediate_size=64, max_position_embeddings=64)
# d25_t6/retrieval_module.py: ``Linear(768 if roberta_base else 1024, 1024)``, whatever the text model's width
TEXT_WIDTH = {"salsa": 32, "dcase2025_baseline": 1024}
TEXT_ENCODER = {kind: f"tiny-roberta-{kind}-release-reference" for kind in TEXT_WIDTH}
SHARED = 1024  # the releases' shared embedding size

# kind -> the released key prefixes of (PaSST net, text model, audio projection, text projection), as saved
KINDS = {
    "salsa": ("audio_embedding_model.model.model.", "sentence_embedding_model.", "project_audio.0.",
              "project_sentence.0."),
    "dcase2025_baseline": ("audio_embedding_model.model.model._orig_mod.", "text_embedding_model._orig_mod.",
                           "audio_projection.", "text_projection."),
}
# hyper-parameters saved with each kind (the entries the importers read; the rest as the sources name them)
HYPER = {
    "salsa": {"train_on": "clothov2", "audio_features": {"model": "passt", "segment_length": 10, "hop_length": 10,
                                                         "model_config": {"s_patchout_t": 15, "s_patchout_f": 2,
                                                                          "freqm": 0, "timem": 0}},
              "sentence_features": {"model": "roberta-large", "max_sentence_tokens": 32, "use_first_token": True,
                                    "remove_punctuation": True},
              "shared_representation_size": SHARED, "initial_tau": 0.05, "freeze_tau": True, "normalize": True},
    "dcase2025_baseline": {"compile": True, "audiocaps": True, "wavcaps": True, "roberta_base": False,
                           "s_patchout_t": 15, "s_patchout_f": 2, "initial_tau": 0.05, "tau_trainable": False},
}


def tiny_text_folder(folder: Path, kind: str) -> str:
    """A tiny RobertaModel (its weights get seeded later) + MiniLM's tokenizer in ``folder``, loadable with
    ``from_pretrained``; registered as text encoder ``TEXT_ENCODER[kind]``. Returns ``folder``."""
    import transformers

    from salsa2.model.encoders import TEXT_ENCODERS
    from salsa2.model.encoders.text import HFTextEncoder, minilm_path

    folder = Path(folder)
    tok = transformers.AutoTokenizer.from_pretrained(minilm_path())
    cfg = transformers.RobertaConfig(vocab_size=tok.vocab_size, pad_token_id=tok.pad_token_id,
                                     hidden_size=TEXT_WIDTH[kind], **TINY)
    torch.manual_seed(0)
    transformers.RobertaModel(cfg, add_pooling_layer=False).save_pretrained(folder)
    tok.save_pretrained(folder)
    name = TEXT_ENCODER[kind]
    TEXT_ENCODERS._items.pop(name, None)  # a later folder (another test module) replaces an earlier one

    @TEXT_ENCODERS.register(name)
    def _build(max_length: int = 32, trainable_layers: int = -1, pooling: str = "cls",
               dropout: float | None = 0.2) -> HFTextEncoder:
        return HFTextEncoder(str(folder), pooling=pooling, max_length=max_length, trainable_layers=trainable_layers,
                             dropout=dropout, pooler=False)
    return str(folder)


def seed_state(state: dict[str, torch.Tensor]) -> OrderedDict:
    """``state`` with every float entry replaced by ``seeded_tensor(key)`` (integer buffers kept)."""
    return OrderedDict((k, seeded_tensor(k, tuple(v.shape)).to(v.dtype) if v.is_floating_point() else v)
                       for k, v in state.items())


def seeded_release(kind: str, text_folder: str) -> tuple[OrderedDict, dict]:
    """(state_dict, hyper_parameters) of a ``kind`` release built from salsa2's modules, seeded by released key."""
    import transformers

    from salsa2.audio.frontends import FrontendConfig
    from salsa2.model.encoders import AUDIO_ENCODERS
    from salsa2.model.release_import import KALDI128

    passt_p, text_p, audio_proj, text_proj = KINDS[kind]
    passt = AUDIO_ENCODERS.build("passt", frontend=FrontendConfig(**KALDI128), weights="none").backbone.net
    roberta = transformers.RobertaModel.from_pretrained(text_folder, add_pooling_layer=False)
    state: dict[str, torch.Tensor] = {passt_p + k: v for k, v in passt.state_dict().items()}
    state.update({text_p + k: v for k, v in roberta.state_dict().items()})
    state.update({audio_proj + "weight": torch.empty(SHARED, passt.embed_dim), audio_proj + "bias": torch.empty(SHARED),
                  text_proj + "weight": torch.empty(SHARED, roberta.config.hidden_size),
                  text_proj + "bias": torch.empty(SHARED), "tau": torch.empty(1)})
    if kind == "salsa":  # OptimusPrimus/salsa ex_dcase24.AudioRetrievalModel: unused without a sequence model
        state.update({"audio_token": torch.empty(1, 1, passt.embed_dim), "timing_tau": torch.empty(1),
                      "posencode.pe": torch.empty(1, 64 * 3, passt.embed_dim), "posencode.w": torch.empty(1)})
    return seed_state(state), dict(HYPER[kind])


def state_digest(state: dict[str, torch.Tensor]) -> str:
    """sha256 over the keys, shapes, dtypes and bytes of ``state`` in key order (the same state, the same digest)."""
    h = hashlib.sha256()
    for k in sorted(state):
        v = state[k].detach().cpu().contiguous()
        h.update(f"{k}|{tuple(v.shape)}|{v.dtype}|".encode())
        h.update(v.numpy().tobytes() if v.dtype != torch.bfloat16 else v.float().numpy().tobytes())
    return h.hexdigest()


def keys_array(state: dict[str, torch.Tensor]) -> np.ndarray:
    """The state's keys with their shapes, ``key:shape``, sorted (what the fixture records of the format)."""
    return np.array(sorted(f"{k}:{'x'.join(map(str, v.shape))}" for k, v in state.items()))


def save_lightning(path: Path, state: dict[str, torch.Tensor], hyper: dict) -> Path:
    """A Lightning-style checkpoint: ``state_dict`` + ``hyper_parameters`` (+ the epoch and an empty optimizer list)."""
    torch.save({"epoch": 15, "global_step": 1, "pytorch-lightning_version": "2.5.0", "state_dict": state,
                "optimizer_states": [], "lr_schedulers": [], "hparams_name": "kwargs", "hyper_parameters": hyper},
               path)
    return path
