"""A frozen text encoder that loads its weights only when text is actually encoded.

With ``text.trainable_layers: 0`` training, validation, similarities and evaluation read the cached caption
features (stage text_features); loading MiniLM there would slow every process down and, registered as a
submodule, would put its weights into every resume file. ``LazyTextEncoder`` stands in for the
frozen encoder: it has no parameters until ``encode``/``forward``/``tokenize``/``tokenizer`` is used (free-text
queries, token masking), then builds the real one (``salsa2.model.encoders.text``) on the model's device.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

# Widths of the registered text encoders (salsa2.model.encoders.text), so the projection can be built unloaded.
KNOWN_WIDTHS = {"minilm": 384, "roberta-large": 1024, "bert-large": 1024, "t5-large": 1024}


class LazyTextEncoder(nn.Module):
    """Frozen stand-in for ``build()``'s encoder; ``out_dim`` must be the width the built one reports."""

    def __init__(self, name: str, out_dim: int, build: Callable[[], nn.Module]) -> None:
        super().__init__()
        self.name = name
        self.out_dim = out_dim
        self._build = build
        self.inner: nn.Module | None = None
        self.register_buffer("_device_probe", torch.empty(0), persistent=False)  # follows .to(device)

    @property
    def loaded(self) -> bool:
        return self.inner is not None

    @property
    def frozen(self) -> bool:
        return True if self.inner is None else bool(self.inner.frozen)

    def materialize(self) -> nn.Module:
        """Build the real encoder (once), on this module's device and in its train/eval mode."""
        if self.inner is None:
            inner = self._build()
            if inner.out_dim != self.out_dim:
                raise RuntimeError(f"text encoder {self.name!r} is {inner.out_dim} wide, expected {self.out_dim}")
            # As built eagerly: the wrapper is left as built (its HF model in eval mode) until .train()/.eval().
            self.inner = inner.to(self._device_probe.device) if self.training else inner.to(
                self._device_probe.device).eval()
        return self.inner

    def set_trainable_layers(self, k: int) -> None:
        if k != 0 or self.inner is not None:
            self.materialize().set_trainable_layers(k)

    @property
    def tokenizer(self):
        return self.materialize().tokenizer

    @property
    def max_length(self) -> int | None:
        """Tokens the built encoder reads per text (the long-query warning compares against it)."""
        return getattr(self.materialize(), "max_length", None)

    def tokenize(self, texts: list[str]) -> dict[str, torch.Tensor]:
        return self.materialize().tokenize(texts)

    def forward(self, tokens: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.materialize()(tokens)

    def encode(self, texts: list[str]) -> torch.Tensor:
        return self.materialize().encode(texts)
