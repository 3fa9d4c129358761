"""A teacher embeds the training set (Primus et al. 2024, sec. 3): a stage-1 model's train-set dump for C-hat.

Reads the model only (``salsa2.distill.members`` holds the file format); never imports the training loop or the
optimiser.
"""

from __future__ import annotations

from pathlib import Path

from salsa2.model.checkpoint import load_checkpoint
from salsa2.config.params import Params
from salsa2.features.splits import load_split
from salsa2.evaluation.embed import embed_split_audio, embed_captions, similarity_matrix
from salsa2.distill.members import save_similarities
from salsa2.features.text_cache import text_store


def dump_similarities(params: Params, model_dir: str | Path, data_dir: str | Path, features_dir: str | Path,
                      text_features: str | Path, out_path: str | Path) -> None:
    """The train-set audio and caption embeddings of one stage-1 model (its similarities' factors), with ids."""
    model, _ = load_checkpoint(model_dir)
    data = load_split(data_dir, "train", features_dir, model.frontend, params.text.normalize)
    store = text_store(params, text_features)
    audio = embed_split_audio(model, data)
    text = embed_captions(model, data, store)
    sim = similarity_matrix(model, data, store) if model.tap is not None else None
    save_similarities(out_path, data.audio_ids, data.caption_ids, audio, text, similarity=sim)
