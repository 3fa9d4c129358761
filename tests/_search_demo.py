"""A tiny demo model trained once per test session, shared by test_index.py and test_search.py.

Generates a small seeded demo dataset, prepares it (folder -> tables -> log-mel cache -> frozen MiniLM
features) and trains small_mobilenet1d for a few epochs with NT-Xent: about 10-20 s on two CPU cores.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from salsa2.checkpoint import save_model
from salsa2.config import TrainParams
from salsa2.data import RetrievalData, load_split
from salsa2.demo import generate
from salsa2.encoders import TEXT_ENCODERS
from salsa2.features import build_cache
from salsa2.frontends import FrontendConfig
from salsa2.inference import SearchModel, checkpoint_id
from salsa2.losses import LOSSES
from salsa2.model import DualEncoder, ModelConfig
from salsa2.pipeline import prepare
from salsa2.tables import read_tables
from salsa2.text_features import TextFeatureStore, compute_text_features, save_text_features
from salsa2.train import fit

N_TRAIN, N_VAL, N_TEST = 80, 16, 40


@dataclass
class Demo:
    root: Path
    data_dir: Path
    features_dir: Path
    model_dir: Path
    model: SearchModel
    random_dir: Path  # an untrained checkpoint (a second, different ensemble member)
    random_model: SearchModel
    test: RetrievalData
    text_store: TextFeatureStore


_CACHE: dict[str, Demo] = {}


def trained_demo(tmp_path_factory) -> Demo:
    if "demo" not in _CACHE:
        _CACHE["demo"] = _build(tmp_path_factory.mktemp("search_demo"))
    return _CACHE["demo"]


def _build(root: Path) -> Demo:
    torch.manual_seed(0)
    generate(root / "demo", N_TRAIN, N_VAL, N_TEST, seed=0, workers=1)
    data_dir = root / "prepared"
    prepare([{"name": "folder", "args": {"root": str(root / "demo"), "captions": "captions.csv", "name": "demo"}}],
            data_dir)
    frontend = FrontendConfig()
    features_dir = root / "features"
    audio, _ = read_tables(data_dir)
    build_cache(features_dir, audio, frontend, min_duration=0.5, workers=1)
    text_kwargs = {"max_length": 32, "trainable_layers": 0}
    text_encoder = TEXT_ENCODERS.build("minilm", **text_kwargs)
    every = load_split(data_dir, ["train", "val", "test"], normalize_text=True)
    save_text_features(root / "text.npz", every.caption_ids, compute_text_features(text_encoder, every.texts),
                       {"model": "minilm"})
    store = TextFeatureStore(root / "text.npz")
    load = lambda split: load_split(data_dir, split, features_dir, frontend, normalize_text=True)
    train, val, test = load("train"), load("val"), load("test")
    cfg = ModelConfig(audio_arch="small_mobilenet1d", frontend=frontend, text_model="minilm", embed_dim=128,
                      audio_kwargs={"width": 0.5, "out_dim": 128, "kernel": 5}, text_kwargs=text_kwargs)
    model = DualEncoder(cfg, text_encoder=text_encoder)
    fit(model, LOSSES.build("nt_xent", tau=0.05), train, val, TrainParams(epochs=12, batch_size=16, lr=3e-3),
        audio_lr=3e-3, text_lr=0.0, text_features=store, seed=0)
    model.eval()
    model_dir = root / "model"
    save_model(model_dir, model, {"stage": 1, "text_normalize": True})
    random = DualEncoder(cfg, text_encoder=text_encoder).eval()
    random_dir = root / "random"
    save_model(random_dir, random, {"stage": 0, "text_normalize": True})
    as_search = lambda m, d, n: SearchModel(n, d, m, {}, checkpoint_id(d), True)
    np.random.seed(0)
    return Demo(root, data_dir, features_dir, model_dir, as_search(model, model_dir, "model"), random_dir,
                as_search(random, random_dir, "random"), test, store)
