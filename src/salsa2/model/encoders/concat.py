"""Concatenated audio encoders (Deshmukh et al. 2023, eq. f(a) = Concat(CNN14(a), HTSAT(a))), as a generic option.

Each part encodes the same spectrogram and is mean-pooled over its own tokens (``weighted_mean``); the
pooled embeddings are concatenated into one token of width ``sum(part.out_dim)``, which the model's
projection maps into the shared space. All parts read one frontend (the model reads one spectrogram
cache), e.g. PaSST + MobileNetV3 on ``kaldi128``.

params.yaml (selected with ``encoders: {passt_mn: kaldi128}``)::

    audio_encoders:
      passt_mn:
        arch: concat
        kwargs:
          weights: pretrained    # for every part
          parts:
            - {arch: passt}
            - {arch: mn40_as_ext}
"""

from __future__ import annotations

import torch
from torch import nn

from salsa2.model.encoders import AUDIO_ENCODERS
from salsa2.model.encoders.base import AudioEncoder, weighted_mean
from salsa2.audio.frontends import FrontendConfig


class ConcatEncoder(AudioEncoder):
    def __init__(self, frontend: FrontendConfig, parts: list[AudioEncoder]) -> None:
        super().__init__()
        if not parts:
            raise ValueError("concat needs at least one part")
        for p in parts:
            if p.frontend.key() != frontend.key():
                raise ValueError(f"concat: part {type(p).__name__} reads frontend {p.frontend}, not {frontend}")
        self.frontend = frontend
        self.parts = nn.ModuleList(parts)
        self.out_dim = sum(p.out_dim for p in parts)

    def forward(self, mel: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pooled = [weighted_mean(*part(mel, lengths)) for part in self.parts]
        emb = torch.cat(pooled, dim=-1)[:, None]
        return emb, emb.new_ones(emb.shape[0], 1)


@AUDIO_ENCODERS.register("concat")
def build_concat(frontend: FrontendConfig, parts: list[dict], weights: str | None = None) -> AudioEncoder:
    """``parts``: list of ``{arch: <registered encoder>, kwargs: {...}}``, built on the shared ``frontend``;
    ``weights`` (pretrained | none), when given, replaces every part's ``weights``."""
    built = []
    for i, spec in enumerate(parts):
        if not isinstance(spec, dict) or "arch" not in spec or set(spec) - {"arch", "kwargs"}:
            raise ValueError(f"concat parts[{i}]: expected {{arch: name, kwargs: {{...}}}}, got {spec!r}")
        kwargs = dict(spec.get("kwargs") or {})
        if weights is not None:
            kwargs["weights"] = weights
        built.append(AUDIO_ENCODERS.build(spec["arch"], frontend=frontend, **kwargs))
    return ConcatEncoder(frontend, built)
