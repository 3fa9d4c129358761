"""Material for using a released model like a trained one (evaluate, teacher, index/search, info): a small sound
library with train and test clips, its prepared tables, log-mel caches of the demo frontend (``mel64``) and of the
released PaSST's ``kaldi128``, judgements of its test split, and a small trained-style checkpoint (MiniLM, frozen)
reading ``mel64``. The released checkpoint itself comes from tests/helpers/released_model.py (conftest's
``imported_release``)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

SAMPLE_RATE = 32000
# (file, split, seconds, captions): punctuation and capitals, so the authors' caption normalisation shows
CLIPS = [
    ("rain.wav", "train", 1.5, ["Rain falls on a tin roof.", "Heavy RAIN, then thunder!"]),
    ("dog.wav", "train", 2.0, ["A dog's bark echoes.", "dogs bark, far away"]),
    ("birds.wav", "train", 1.0, ["Birds chirp in the trees", "a bird's song at dawn"]),
    ("engine.wav", "train", 2.5, ["An engine idles; a door shuts.", "a car's motor running"]),
    ("water.wav", "test", 1.5, ["Water drips into a sink.", "drip, drip, drip..."]),
    ("crowd.wav", "test", 2.0, ["People talk in a busy hall", "a crowd's murmur!"]),
    ("wind.wav", "test", 1.0, ["Wind howls past the window", "strong WIND gusts"]),
]
DATASET = "lib"


@dataclass
class Library:
    root: Path          # the audio files and captions.csv
    data: Path          # prepared tables
    features: Path      # folder of caches: features/mel64, features/kaldi128
    judgements: Path    # multi-relevance judgements of the test split
    text_features: Path  # frozen MiniLM features of every caption (spaces normalisation)


def mel64():
    """params.yaml's demo frontend."""
    from salsa2.config.params import load_params
    from salsa2.features.logmel_cache import frontend_from_params

    from helpers import REPO

    return frontend_from_params(load_params(REPO / "params.yaml")["frontends"]["mel64"])


def build_library(root: Path) -> Library:
    """Write the clips (seeded noise with a different spectral tilt each), prepare them and cache both frontends."""
    from salsa2.audio.frontends import FrontendConfig
    from salsa2.data.prepare import prepare
    from salsa2.features.logmel_cache import build_features
    from salsa2.features.text_cache import build_text_features
    from salsa2.model.release_import import KALDI128

    audio = root / "audio"
    audio.mkdir(parents=True)
    rows = []
    for i, (name, split, seconds, captions) in enumerate(CLIPS):
        rng = np.random.default_rng(i)
        wav = np.cumsum(rng.standard_normal(int(seconds * SAMPLE_RATE)) * (0.02 + 0.01 * i)).astype(np.float32)
        wav = (0.2 * wav / np.abs(wav).max()).astype(np.float32)
        sf.write(audio / name, wav, SAMPLE_RATE)
        rows += [{"file": name, "caption": c, "split": split} for c in captions]
    pd.DataFrame(rows).to_csv(audio / "captions.csv", index=False)
    data = root / "prepared"
    prepare([{"name": "folder", "args": {"root": str(audio), "name": DATASET}}], data)
    build_features(data, mel64(), root / "features" / "mel64", min_duration=0.5)
    build_features(data, FrontendConfig(**KALDI128), root / "features" / "kaldi128", min_duration=0.5)
    test = [c for c in CLIPS if c[1] == "test"]
    judged = [{"caption": cap, "file": name, "relevant": json.dumps([name] + ([test[0][0]] if j == 1 else []))}
              for name, _, _, caps in test for j, cap in enumerate(caps)]
    pd.DataFrame(judged).to_csv(root / "judgements.csv", index=False)
    build_text_features(data, "minilm", 32, "spaces", None, root / "text_features.npz")
    return Library(audio, data, root / "features", root / "judgements.csv", root / "text_features.npz")


def trained_checkpoint(out: Path, arch: str = "small_mobilenet1d", seed: int = 0, frontend=None,
                       trained_on: dict | None = None) -> Path:
    """A randomly initialised salsa2 checkpoint as stage 1 writes one (demo frontend, frozen MiniLM, D = 1024 as the
    release's): what a released model is evaluated and ensembled beside. ``frontend`` / ``trained_on``: another
    frontend and provenance record, for a small stand-in of a released model where its weights do not matter."""
    import torch

    from salsa2.model.checkpoint import save_checkpoint
    from salsa2.model.dual_encoder import DualEncoder, ModelConfig

    torch.manual_seed(seed)
    cfg = ModelConfig(audio_arch=arch, frontend=frontend or mel64(), text_model="minilm", embed_dim=1024,
                      audio_kwargs={"width": 0.25, "out_dim": 32, "kernel": 3},
                      text_kwargs={"max_length": 32, "trainable_layers": 0})
    model = DualEncoder(cfg).eval()
    trained_on = trained_on or {
        "split": "train", "datasets": {DATASET: {"clips": 4, "captions": 8, "synthetic": False}}, "clips": 4,
        "captions": 8, "data_hash": "0" * 16, "synthetic_only": False}
    save_checkpoint(out, model, {"text_normalize": "spaces", "trained_on": trained_on, "best_epoch": 1})
    return out


def released_stand_in(out: Path) -> Path:
    """A small checkpoint that reads ``kaldi128`` and records provenance as the release import does (source, file,
    sha256, train_on): a released model for the tests where its weights do not matter."""
    from salsa2.audio.frontends import FrontendConfig
    from salsa2.model.release_import import KALDI128

    record = {"source": "https://github.com/OptimusPrimus/salsa", "file": "passt_roberta.ckpt", "sha256": "ab" * 32,
              "train_on": "clothov2", "synthetic_only": False, "note": "released by the authors"}
    return trained_checkpoint(out, frontend=FrontendConfig(**KALDI128), trained_on=record)


def released_project(folder: Path, root: Path, name: str = "salsa") -> Path:
    """``root`` laid out as a project whose ``models/released/<name>`` is the checkpoint ``folder`` (as stage
    release@<name> leaves it); returns ``root`` (chdir there to resolve released names)."""
    (root / "models/released").mkdir(parents=True)
    os.symlink(folder, root / "models/released" / name)
    return root
