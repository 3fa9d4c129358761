"""A stage-1 model's train-set audio and caption embeddings, the factors of its similarities
(Primus et al. 2024, sec. 3;
stage ensemble averages them into C-hat). Reads the model only; never imports the training loop or the optimiser."""

from __future__ import annotations

from salsa2.model.checkpoint import load_checkpoint
from salsa2.config.params import Params
from salsa2.features.splits import load_split
from salsa2.evaluation.embed import embed_split_audio, embed_captions, similarity_matrix
from salsa2.distill.targets import save_similarities
from salsa2.features.text_cache import text_store


def dump_similarities(params: Params, model_dir, data_dir, features_dir, text_features, out_path) -> None:
    """The train-set audio x caption similarity matrix of one stage-1 model, with row/column ids."""
    model, _ = load_checkpoint(model_dir)
    data = load_split(data_dir, "train", features_dir, model.frontend, params.text.normalize)
    store = text_store(params, text_features)
    audio = embed_split_audio(model, data)
    text = embed_captions(model, data, store)
    sim = similarity_matrix(model, data, store) if model.tap is not None else None
    save_similarities(out_path, data.audio_ids, data.caption_ids, audio, text, similarity=sim)
