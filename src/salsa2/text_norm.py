"""Caption normalisation.

``clean_caption`` is applied when tables are prepared (whitespace and Unicode only: the published text stays
readable). ``normalize_for_model`` is applied before tokenising when ``text.normalize`` is on, as the
authors of seed 002 do: lower-case, punctuation removed, whitespace collapsed.
"""

from __future__ import annotations

import re
import string
import unicodedata

_PUNCT = re.compile(f"[{re.escape(string.punctuation)}]")
_SPACE = re.compile(r"\s+")


def clean_caption(text: str) -> str:
    return _SPACE.sub(" ", unicodedata.normalize("NFC", str(text))).strip()


def normalize_for_model(text: str) -> str:
    return _SPACE.sub(" ", _PUNCT.sub(" ", clean_caption(text).lower())).strip()
