"""Search test material built on the shared session fixtures (tests/conftest.py: tiny_demo, trained_model;
conftest's ``search_demo`` fixture builds it once per session).

The tiny demo has 48 + 16 + 16 clips; the search tests index all of them (raw/audio, 80 clips) so that a
top 10 means something (chance 10/80). The search model is trained here a little longer than the shared
``trained_model`` (12 epochs at a higher rate), so that most captions find their clip; the
shared model is the second member of the ensemble tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from salsa2.model.checkpoint import load_checkpoint
from salsa2.model.checkpoint import save_checkpoint
from salsa2.config.params import TrainParams
from salsa2.features.splits import RetrievalData, load_split
from salsa2.search.inference import SearchModel, checkpoint_id
from salsa2.training.losses import LOSSES
from salsa2.model.dual_encoder import DualEncoder
from salsa2.features.text_cache import TextFeatureStore
from salsa2.training.loop import fit

SPLITS = ["train", "val", "test"]


@dataclass
class Demo:
    root: Path  # the generated folder dataset (audio under root / "audio")
    model_dir: Path
    model: SearchModel
    other_dir: Path  # the shared trained_model
    other_model: SearchModel
    clips: RetrievalData  # every clip and caption, with cached log-mels
    text_store: TextFeatureStore

    @property
    def audio_dir(self) -> Path:
        return self.root / "audio"


def build_search_demo(tiny_demo, trained_model: Path, tmp_path_factory) -> Demo:
    other, _ = load_checkpoint(trained_model)
    store = TextFeatureStore(tiny_demo.text_features)
    load = lambda split: load_split(tiny_demo.data, split, tiny_demo.features, other.frontend,  # noqa: E731
                                    normalize_text=True)
    torch.manual_seed(0)
    model = DualEncoder(other.cfg, text_encoder=other.text_encoder)
    fit(model, LOSSES.build("nt_xent", tau=0.05), load("train"), load("val"),
        TrainParams(epochs=12, batch_size=16, lr=3e-3), audio_lr=3e-3, text_lr=0.0, text_features=store, seed=0)
    model.eval()
    model_dir = tmp_path_factory.mktemp("search_model") / "model"
    save_checkpoint(model_dir, model, {"stage": 1, "text_normalize": True})
    return Demo(
        root=tiny_demo.raw,
        model_dir=model_dir,
        model=SearchModel("model", model_dir, model, {}, checkpoint_id(model_dir), True),
        other_dir=Path(trained_model),
        other_model=SearchModel("other", Path(trained_model), other, {}, checkpoint_id(trained_model), True),
        clips=load(SPLITS),
        text_store=store,
    )
