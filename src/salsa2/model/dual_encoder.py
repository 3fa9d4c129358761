"""The dual encoder: audio encoder + pooling + projection, text encoder + projection, into one space
(Primus et al. 2024, sec. 2).

``C_ij = phi_a(a_i) . phi_c(c_j) / (|phi_a(a_i)| |phi_c(c_j)|)``: both embeddings are L2-normalised, so the
similarity of audio i and caption j is a dot product. With text-aware attention pooling (``pooling: tap``,
Tymofieiev 2025, sec. 3.6) the clip embedding depends on the caption; ``encode_audio_side`` then returns the clip's
projected tokens and ``similarity`` pools them for every caption (``salsa2.model.pooling``). Training and evaluation
both go through ``similarity``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from salsa2.model.encoders import AUDIO_ENCODERS, TEXT_ENCODERS
from salsa2.model.encoders.base import AudioEncoder, weighted_mean
from salsa2.model.encoders.lazy_text import KNOWN_WIDTHS, LazyTextEncoder
from salsa2.model.encoders.text import MAX_LENGTH, TRAINABLE_LAYERS
from salsa2.audio.frontends import FrontendConfig
from salsa2.model.pooling import TextAwarePooling

POOLINGS = ("mean", "tap")


@dataclass
class AudioSide:
    """What the audio tower hands to ``DualEncoder.similarity``: an embedding or, for TAP, tokens + weights."""

    embedding: torch.Tensor | None = None  # (A, D), L2-normalised (mean pooling)
    tokens: torch.Tensor | None = None     # (A, S, D) projected tokens (TAP)
    weights: torch.Tensor | None = None    # (A, S)

    def __len__(self) -> int:
        ref = self.embedding if self.embedding is not None else self.tokens
        assert ref is not None
        return ref.shape[0]


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild a DualEncoder (saved next to its weights)."""

    audio_arch: str
    frontend: FrontendConfig
    text_model: str = "minilm"
    embed_dim: int = 256
    audio_kwargs: dict = field(default_factory=dict)
    text_kwargs: dict = field(default_factory=dict)
    pooling: str = "mean"  # mean | tap
    pooling_kwargs: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> ModelConfig:
        d = dict(d)
        d["frontend"] = FrontendConfig(**d["frontend"])
        return cls(**d)


def build_text_encoder(name: str, kwargs: dict) -> nn.Module:
    """The text encoder of a config; a frozen one of known width loads its weights only when used."""
    if kwargs.get("trainable_layers", TRAINABLE_LAYERS) == 0 and name in KNOWN_WIDTHS:
        return LazyTextEncoder(name, KNOWN_WIDTHS[name], lambda: TEXT_ENCODERS.build(name, **kwargs),
                               max_length=kwargs.get("max_length", MAX_LENGTH))
    return TEXT_ENCODERS.build(name, **kwargs)


class DualEncoder(nn.Module):
    def __init__(self, cfg: ModelConfig, audio_encoder: AudioEncoder | None = None, text_encoder=None) -> None:
        super().__init__()
        self.cfg = cfg
        self.audio_encoder = audio_encoder or AUDIO_ENCODERS.build(
            cfg.audio_arch, frontend=cfg.frontend, **cfg.audio_kwargs
        )
        self.text_encoder = text_encoder or build_text_encoder(cfg.text_model, cfg.text_kwargs)
        self.audio_proj = nn.Linear(self.audio_encoder.out_dim, cfg.embed_dim)
        self.text_proj = nn.Linear(self.text_encoder.out_dim, cfg.embed_dim)
        if cfg.pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {cfg.pooling!r}")
        self.tap = TextAwarePooling(cfg.embed_dim, **cfg.pooling_kwargs) if cfg.pooling == "tap" else None

    @property
    def frontend(self) -> FrontendConfig:
        return self.cfg.frontend

    def audio_tokens(self, mel: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Projected, unnormalised token sequence (B, S, D) and pooling weights (B, S)."""
        tokens, weights = self.audio_encoder(mel, lengths)
        return self.audio_proj(tokens), weights

    def encode_audio(self, mel: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """(B, n_mels, T) log-mel -> (B, D) L2-normalised embeddings (mean pooling over snippets / frames).

        With TAP there is no caption-independent clip embedding; this is then the mean-pooled projection (used
        only where one vector per clip is needed, e.g. for search indexes), never the model's similarity.
        """
        tokens, weights = self.audio_encoder(mel, lengths)
        return F.normalize(self.audio_proj(weighted_mean(tokens, weights)), dim=-1)

    def encode_audio_side(self, mel: torch.Tensor, lengths: torch.Tensor) -> AudioSide:
        """The audio half of ``similarity``: the embedding (mean pooling) or projected tokens + weights (TAP)."""
        if self.tap is None:
            return AudioSide(embedding=self.encode_audio(mel, lengths))
        tokens, weights = self.audio_tokens(mel, lengths)
        return AudioSide(tokens=tokens, weights=weights)

    def similarity(self, audio: AudioSide | torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        """(A, T) cosine similarities C_ij of clips and (L2-normalised) caption embeddings (T, D)."""
        if isinstance(audio, torch.Tensor):
            audio = AudioSide(embedding=audio)
        if audio.embedding is not None:
            return audio.embedding @ text.T
        if self.tap is None:
            raise ValueError("token-level audio needs pooling: tap")
        assert audio.tokens is not None and audio.weights is not None
        return self.tap.similarity(audio.tokens, audio.weights, text)

    def encode_text_features(self, features: torch.Tensor) -> torch.Tensor:
        """Pooled text-encoder output (B, H) -> (B, D) L2-normalised (used with cached frozen features)."""
        return F.normalize(self.text_proj(features), dim=-1)

    def encode_text(self, texts: list[str]) -> torch.Tensor:
        return self.encode_text_features(self.text_encoder.encode(texts))
