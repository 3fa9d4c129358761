"""A small checkpoint in the format of OptimusPrimus/salsa's released ``passt_roberta.ckpt``.

A Lightning-style dict (``state_dict`` + sacred ``hyper_parameters``) saved with torch.save, its keys named as
``AudioRetrievalModel`` (experiments/ex_dcase24.py there) names them; PaSST at its real size (seeded), a tiny random
RoBERTa (no pooler) with the offline MiniLM tokenizer standing in for roberta-large (registered as text encoder
``TINY_TEXT``). Used by tests/model/test_release_import.py and tests/model/test_release_fetch.py.
"""

from __future__ import annotations

from pathlib import Path

import torch

TINY_TEXT = "tiny-roberta-release-test"
HIDDEN = 32
PASST = "audio_embedding_model.model.model."
TEXT = "sentence_embedding_model."


def tiny_roberta(folder: Path, name: str = TINY_TEXT) -> str:
    """Write a tiny random RobertaModel (no pooler) + MiniLM's tokenizer to ``folder`` and register it as text
    encoder ``name`` (:func:`register_tiny_text`); returns ``folder``."""
    import transformers

    from salsa2.model.encoders.text import minilm_path

    tok = transformers.AutoTokenizer.from_pretrained(minilm_path())
    cfg = transformers.RobertaConfig(vocab_size=tok.vocab_size, hidden_size=HIDDEN, num_hidden_layers=2,
                                     num_attention_heads=4, intermediate_size=64, max_position_embeddings=64,
                                     pad_token_id=tok.pad_token_id)
    torch.manual_seed(1)
    transformers.RobertaModel(cfg, add_pooling_layer=False).save_pretrained(folder)
    tok.save_pretrained(folder)
    return register_tiny_text(folder, name)


def register_tiny_text(folder: str | Path, name: str = TINY_TEXT) -> str:
    """Register the tiny RoBERTa in ``folder`` as text encoder ``name`` (once per process: a later call with the
    same name keeps the first folder)."""
    from salsa2.model.encoders import TEXT_ENCODERS
    from salsa2.model.encoders.text import HFTextEncoder

    if name not in TEXT_ENCODERS:
        @TEXT_ENCODERS.register(name)
        def _build(max_length: int = 32, trainable_layers: int = -1, pooling: str = "cls",
                   dropout: float | None = 0.2) -> HFTextEncoder:
            return HFTextEncoder(str(folder), pooling=pooling, max_length=max_length,
                                 trainable_layers=trainable_layers, dropout=dropout, pooler=False)
    return str(folder)


def build_released(path: Path, roberta_folder: str) -> dict:
    """Save a released-format checkpoint at ``path``; returns it with its modules (for direct computation), its
    state dict and hyper-parameters: ``path``, ``passt``, ``roberta``, ``project_audio``, ``project_sentence``,
    ``state``, ``hyper``."""
    import transformers

    from salsa2.audio.frontends import FrontendConfig
    from salsa2.model.encoders import AUDIO_ENCODERS
    from salsa2.model.release_import import KALDI128

    torch.manual_seed(0)
    passt = AUDIO_ENCODERS.build("passt", frontend=FrontendConfig(**KALDI128), weights="none").backbone.net.eval()
    roberta = transformers.RobertaModel.from_pretrained(roberta_folder, add_pooling_layer=False).eval()
    project_audio, project_sentence = torch.nn.Linear(768, 1024), torch.nn.Linear(HIDDEN, 1024)
    state = {PASST + k: v for k, v in passt.state_dict().items()}
    state.update({TEXT + k: v for k, v in roberta.state_dict().items()})
    state.update({f"project_audio.0.{k}": v for k, v in project_audio.state_dict().items()})
    state.update({f"project_sentence.0.{k}": v for k, v in project_sentence.state_dict().items()})
    state.update({"tau": torch.tensor([0.05]), "timing_tau": torch.tensor([0.05]),
                  "audio_token": torch.randn(1, 1, 768), "posencode.pe": torch.randn(1, 192, 768),
                  "posencode.w": torch.tensor(1.0)})
    hyper = {"train_on": "clothov2", "audio_features": {"model": "passt", "segment_length": 10},
             "sentence_features": {"model": "roberta-large", "max_sentence_tokens": 32}, "initial_tau": 0.05}
    torch.save({"state_dict": state, "hyper_parameters": hyper, "epoch": 12, "optimizer_states": []}, path)
    return {"path": path, "passt": passt, "roberta": roberta, "project_audio": project_audio,
            "project_sentence": project_sentence, "state": state, "hyper": hyper}


def split_file(path: Path, folder: Path, n: int, stem: str = "passt_roberta") -> list[Path]:
    """Cut ``path`` into ``n`` parts ``<stem>.1.ckpt`` ... in ``folder`` (as the authors publish theirs)."""
    data = path.read_bytes()
    step = -(-len(data) // n)
    folder.mkdir(parents=True, exist_ok=True)
    parts = []
    for i in range(n):
        part = folder / f"{stem}.{i + 1}.ckpt"
        part.write_bytes(data[i * step:(i + 1) * step])
        parts.append(part)
    return parts
