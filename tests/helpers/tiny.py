"""Tiny stand-ins shared by the training tests: a fake spectrogram cache, a fake frozen text encoder with cached
features, a few-hundred-parameter dual encoder (no MiniLM, no audio files), and one epoch's optimizer steps."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from salsa2.config.params import TrainParams
from salsa2.features.splits import RetrievalData
from salsa2.features.logmel_cache import MemoryCache
from salsa2.audio.frontends import FrontendConfig
from salsa2.model.dual_encoder import DualEncoder, ModelConfig
from salsa2.training.distributed import DistContext
from salsa2.training.loop import fit
from salsa2.training.losses import LOSSES
from salsa2.training.resume import ResumeState

N_MELS = 16
TEXT_DIM = 12
FRONTEND = FrontendConfig(n_mels=N_MELS, f_max=8000.0)


FakeCache = MemoryCache  # audio_id -> (n_mels, T) float16 log-mel, like SpectrogramCache.get/frames


class FakeTextEncoder(nn.Module):
    """A frozen text encoder whose features come from a FakeStore (``encode`` is never needed)."""

    out_dim = TEXT_DIM
    frozen = True

    def encode(self, texts: list[str]) -> torch.Tensor:  # pragma: no cover - the store is always used
        raise AssertionError("tests use cached text features")


class FakeStore:
    """caption_id -> feature, like TextFeatureStore.lookup."""

    def __init__(self, ids: list[str], feats: np.ndarray) -> None:
        self.row = {c: i for i, c in enumerate(ids)}
        self.features = feats

    def lookup(self, ids: list[str]) -> np.ndarray:
        return self.features[[self.row[c] for c in ids]]


def tiny_data(n_clips: int, seed: int, captions_per_clip: int = 2, prefix: str = "a") -> tuple[RetrievalData,
                                                                                             FakeStore]:
    """Clips of 80-200 frames whose class (one of 4) shows in both the mel and the caption features."""
    rng = np.random.default_rng(seed)
    classes = rng.integers(0, 4, n_clips)
    mel_proto = rng.normal(size=(4, N_MELS, 1)) * 3
    text_proto = rng.normal(size=(4, TEXT_DIM))
    audio_ids = [f"{prefix}{i:03d}" for i in range(n_clips)]
    mels = {}
    for a, c in zip(audio_ids, classes):
        t = int(rng.integers(80, 200))
        mels[a] = (mel_proto[c] - 4.5 + rng.normal(size=(N_MELS, t))).astype(np.float16)
    caption_ids, texts, caption_audio, feats = [], [], [], []
    for i, (a, c) in enumerate(zip(audio_ids, classes)):
        for k in range(captions_per_clip):
            caption_ids.append(f"{a}#{k}")
            texts.append(f"class {c}")
            caption_audio.append(i)
            feats.append(text_proto[c] + 0.5 * rng.normal(size=TEXT_DIM))
    data = RetrievalData(audio_ids, caption_ids, texts, np.array(caption_audio), FakeCache(mels))
    return data, FakeStore(caption_ids, np.array(feats, np.float32))


def tiny_model(arch: str = "small_transformer", seed: int = 0, dropout: float = 0.0) -> DualEncoder:
    kwargs = ({"dim": 16, "depth": 1, "heads": 2, "stack": 8, "snippet_seconds": 10.0, "dropout": dropout}
              if arch == "small_transformer" else {"width": 0.125, "out_dim": 16, "kernel": 3})
    torch.manual_seed(seed)
    cfg = ModelConfig(audio_arch=arch, frontend=FRONTEND, text_model="fake", embed_dim=8, audio_kwargs=kwargs)
    return DualEncoder(cfg, text_encoder=FakeTextEncoder())


def optimizer_steps(root: Path, **cfg) -> int:
    """Optimizer steps of one epoch of ``tiny_data(20)`` in batches of 6 (4 batches), read from the resume state
    written under ``root``; ``cfg``: more TrainParams."""
    train, store = tiny_data(20, seed=0)  # batch 6 -> 4 batches an epoch
    val, _ = tiny_data(6, seed=0)
    ckpt = ResumeState("acc", "k", root / str(sorted(cfg.items())))
    fit(tiny_model(), LOSSES.build("nt_xent"), train, val,
        TrainParams(epochs=1, batch_size=6, device="cpu", **cfg), audio_lr=1e-3, text_lr=0.0,
        text_features=store, checkpointer=ckpt, dist=DistContext())
    state = torch.load(ckpt.path, weights_only=False)["optimizer"]["state"]
    return int(next(iter(state.values()))["step"])
