"""The paper preset (params-paper.yaml, salsa2.config.presets): it parses, its override arguments reproduce it, and
DVC applies them."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import yaml

from salsa2.config import presets
from salsa2.config.params import load_params, training_params
from salsa2.features.splits import collate_mels, crop_frames
from salsa2.model.encoders import AUDIO_ENCODERS
from salsa2.model.encoders.efficientat import build_mn40_as_ext
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
    args = presets.override_args(PRESET, base)
    assert "+audio_encoders.atst={arch:atst_frame,lr:2.0e-05,batch_size:64," \
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


def test_paper_preset_trains_as_the_authors_code():
    """The authors' training (OptimusPrimus/salsa at 983b450, ``ex_dcase24.py``): 2e-5 for every encoder and head
    (Tymofieiev 2025's ATST rate 4e-6 is the documented alternative), clips cropped at random to 30 s
    (``set_fixed_length(30)``), and MobileNet on all three 10 s snippets of the 30 s zero-padded clip."""
    base = yaml.safe_load((REPO / "params.yaml").read_text())
    params = training_params(presets.apply(PRESET, base))
    rates = {params.audio_encoder(n).lr for n in params.encoders} | {params.text.lr, params.stage1.lr, params.stage2.lr}
    assert rates == {2e-5}
    assert params.stage1.max_seconds == params.stage2.max_seconds == 30.0
    # a 30 s clip is never cropped, a longer one is cut to the frames of a 30 s clip
    for name in params.encoders:
        fe = params.frontend(params.audio_encoder(name).frontend)
        frames = crop_frames(fe, params.stage1.max_seconds)
        assert frames == fe.num_frames(30 * fe.sample_rate)
        thirty, longer = np.zeros((2, frames), np.float32), np.ones((2, frames + 700), np.float32)
        _, lengths = collate_mels([thirty, longer], frames, np.random.default_rng(0))
        assert lengths.tolist() == [frames, frames]
    mn = params.audio_encoder("mn")
    assert mn.arch == "mn40_as_ext"
    pad, snippet = mn.kwargs["train_pad_seconds"], mn.kwargs.get("snippet_seconds", 10.0)
    assert pad / snippet == 3 and pad == params.stage1.max_seconds
    assert inspect.signature(build_mn40_as_ext).parameters["train_pad_seconds"].default == pad  # the builder agrees
