"""Caption normalisation.

``clean_caption`` is applied when tables are prepared (whitespace and Unicode only: the published text stays
readable). ``normalize_for_model`` is applied before tokenising, by mode (``text.normalize``):

``authors``  lower-case, ASCII punctuation deleted (``"man's" -> "mans"``), nothing else: exactly the
             authors of Primus et al. 2024 (OptimusPrimus/salsa ``ex_dcase24.forward_sentence``:
             ``b.lower().translate(str.maketrans('', '', string.punctuation))``).
``spaces``   lower-case, punctuation replaced by a space, whitespace collapsed (``"man s"``); the demo's
             default (``true`` in params / checkpoints means this).
``none``     the caption as prepared (``false``).
"""

from __future__ import annotations

import re
import string
import unicodedata

_PUNCT = re.compile(f"[{re.escape(string.punctuation)}]")
_SPACE = re.compile(r"\s+")
_DELETE_PUNCT = str.maketrans("", "", string.punctuation)
MODES = ("authors", "spaces", "none")


def clean_caption(text: str) -> str:
    return _SPACE.sub(" ", unicodedata.normalize("NFC", str(text))).strip()


def normalize_mode(value: bool | str | None) -> str:
    """``text.normalize`` -> one of MODES; booleans are accepted (true: spaces, false: none)."""
    if value is True:
        return "spaces"
    if value is False or value is None:
        return "none"
    if value not in MODES:
        raise ValueError(f"text.normalize must be one of {list(MODES)} (or true/false), got {value!r}")
    return str(value)


def normalize_for_model(text: str, mode: bool | str = "authors") -> str:
    """The caption as the text encoder sees it under ``mode`` (see the module docstring)."""
    mode = normalize_mode(mode)
    if mode == "authors":
        return clean_caption(text).lower().translate(_DELETE_PUNCT)
    if mode == "spaces":
        return _SPACE.sub(" ", _PUNCT.sub(" ", clean_caption(text).lower())).strip()
    return clean_caption(text)
