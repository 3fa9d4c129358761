"""The paper preset (params-paper.yaml) and the frontends of its encoders, as the tests build them."""

from __future__ import annotations

import yaml

from salsa2.audio.frontends import FrontendConfig

from . import REPO

PRESET = yaml.safe_load((REPO / "params-paper.yaml").read_text())
KALDI128 = FrontendConfig(**PRESET["frontends"]["kaldi128"])  # PaSST and MobileNet (EfficientAT)
MEL64_ATST = FrontendConfig(**PRESET["frontends"]["mel64_atst"])  # ATST-Frame
