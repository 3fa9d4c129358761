"""The paper preset (params-paper.yaml, salsa2.config.presets): it parses, its override arguments reproduce it, and
DVC applies them."""

from __future__ import annotations

import pytest
import yaml

from salsa2.config import presets
from salsa2.config.params import load_params, training_params
from salsa2.model.encoders import AUDIO_ENCODERS
from helpers import REPO
from helpers.paper import PRESET


def test_paper_preset_parses_and_its_overrides_reproduce_it():
    base = yaml.safe_load((REPO / "params.yaml").read_text())
    merged = presets.apply(PRESET, base)
    params = training_params(merged)
    assert params.embed_dim == 1024 and params.text.model == "roberta-large"
    for name in params.encoders:
        enc = params.audio_encoder(name)
        assert enc.arch in AUDIO_ENCODERS
        params.frontend(enc.frontend)
    assert params.audio_encoder("atst").lr == pytest.approx(4e-6)
    args = presets.override_args(PRESET, base)
    assert "+audio_encoders.atst={arch:atst_frame,lr:4.0e-06,batch_size:64," \
           "kwargs:{weights:pretrained,freq_warp:0.0,snippet_seconds:10.0}}" in args
    # the selection and the caches are replaced, not merged: DVC deletes the demo's first
    assert args[:4] == ["-S", "~encoders", "-S", "+encoders={passt:kaldi128,atst:mel64_atst,mn:kaldi128}"]
    assert "~frontends" in args and "embed_dim=1024" in args
    # every float is written so that YAML reads it back as a float
    for a in args[1::2]:
        for tok in a.replace("{", ",").replace("}", ",").replace("=", ",").split(","):
            val = tok.split(":")[-1]
            if "e-" in val:
                assert isinstance(yaml.safe_load(val), float), a


def test_dvc_applies_the_documented_overrides(tmp_path):
    """The `dvc exp run -S ...` arguments, applied by DVC's own writer, give exactly the merged preset."""
    hydra = pytest.importorskip("dvc.utils.hydra")
    base = yaml.safe_load((REPO / "params.yaml").read_text())
    target = tmp_path / "params.yaml"
    target.write_text((REPO / "params.yaml").read_text())
    hydra.apply_overrides(str(target), presets.override_args(PRESET, base)[1::2])
    assert load_params(target) == presets.apply(PRESET, base)
