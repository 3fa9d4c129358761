"""Shared fixtures: a tiny demo dataset (generated, prepared, featurised), a briefly trained model and the search
material built on them (tests/helpers/search_demo.py)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from helpers import REPO

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session", autouse=True)
def _private_resume_dir(tmp_path_factory):
    """Training resume state goes to a per-session folder, never the user's ~/.cache."""
    os.environ["SALSA2_RESUME_DIR"] = str(tmp_path_factory.mktemp("resume"))


@dataclass
class TinyDemo:
    raw: Path  # the generated folder dataset
    data: Path  # prepared tables
    features: Path  # log-mel cache (default FrontendConfig)
    text_features: Path  # frozen MiniLM features of every caption


@pytest.fixture(scope="session")
def tiny_demo(tmp_path_factory) -> TinyDemo:
    from salsa2.data.demo import generate
    from salsa2.audio.frontends import FrontendConfig
    from salsa2.features.logmel_cache import build_features
    from salsa2.data.prepare import prepare
    from salsa2.features.text_cache import build_text_features

    root = tmp_path_factory.mktemp("tiny_demo")
    generate(root / "raw", n_train=48, n_val=16, n_test=16, seed=7, workers=1)
    prepare([{"name": "folder", "args": {"root": str(root / "raw"), "name": "demo"}}], root / "prepared")
    build_features(root / "prepared", FrontendConfig(), root / "features", min_duration=0.5)
    build_text_features(root / "prepared", "minilm", 32, True, None, root / "text_features.npz")
    return TinyDemo(root / "raw", root / "prepared", root / "features", root / "text_features.npz")


@pytest.fixture(scope="session")
def tiny_params():
    """The repository's params.yaml, shrunk for tests (same keys, so the stages' code paths are exercised)."""
    from salsa2.config.params import load_params, training_params

    raw = load_params(REPO / "params.yaml")
    raw["stage1"] = {**raw["stage1"], "epochs": 8, "batch_size": 16}
    raw["stage2"] = {**raw["stage2"], "epochs": 2, "batch_size": 16}
    return training_params(raw)


@pytest.fixture(scope="session")
def trained_model(tiny_demo, tiny_params, tmp_path_factory) -> Path:
    """A small_mobilenet1d dual encoder trained for eight epochs on the tiny demo (checkpoint directory)."""
    from salsa2.training.two_stage import train_stage1

    out = tmp_path_factory.mktemp("model") / "stage1-cnn"
    train_stage1(tiny_params, "cnn", tiny_demo.data, tiny_demo.features, tiny_demo.text_features, out)
    return out


@pytest.fixture(scope="session")
def search_demo(tiny_demo, trained_model, tmp_path_factory):
    """A search model trained a little longer than ``trained_model``, both as SearchModels, and every demo clip."""
    from helpers.search_demo import build_search_demo

    return build_search_demo(tiny_demo, trained_model, tmp_path_factory)


@pytest.fixture(scope="session")
def minilm():
    """The frozen MiniLM text encoder (max_length 32)."""
    from salsa2.model.encoders import TEXT_ENCODERS

    return TEXT_ENCODERS.build("minilm", max_length=32, trainable_layers=0)


@pytest.fixture(scope="session")
def imported_release(tmp_path_factory) -> dict:
    """The released-format checkpoint of tests/helpers/released_model.py (PaSST at its real size, a tiny RoBERTa as
    text encoder ``TINY_TEXT``) imported as a salsa2 checkpoint folder: ``folder``, ``whole`` (the .ckpt),
    ``roberta`` (the tiny text model's folder)."""
    from helpers.released_model import TINY_TEXT, build_released, tiny_roberta
    from salsa2.model.release_import import RELEASE_FILE, import_salsa_release

    root = tmp_path_factory.mktemp("imported_release")
    roberta = tiny_roberta(root / "roberta")
    whole = build_released(root / RELEASE_FILE, roberta)["path"]
    folder = import_salsa_release(whole, root / "salsa", text_model=TINY_TEXT)
    return {"folder": folder, "whole": whole, "roberta": roberta}


@pytest.fixture(scope="session")
def sound_library(tmp_path_factory):
    """A small sound library with train and test clips, prepared, cached for mel64 and kaldi128, with judgements
    (tests/helpers/released_use.py)."""
    from helpers.released_use import build_library

    return build_library(tmp_path_factory.mktemp("sound_library"))
