"""A teacher embeds the training set (Primus et al. 2024, sec. 3): a stage-1 model's or a released model's train-set
dump for C-hat.

Reads the model only (``salsa2.distill.members`` holds the file format); never imports the training loop or the
optimiser. A stage-1 teacher reads the cache of the frontend ``encoders`` gives it; a released teacher
(``released-<name>`` in ``stage2.teachers``, ``models/released/<name>``) the cache of its own frontend.
"""

from __future__ import annotations

from pathlib import Path

from salsa2.model.checkpoint import load_checkpoint
from salsa2.config.params import Params
from salsa2.features.caches import cache_for, feature_caches
from salsa2.features.splits import load_split
from salsa2.evaluation.embed import embed_split_audio, embed_captions, similarity_matrix
from salsa2.distill.members import save_similarities
from salsa2.features.text_cache import text_store
from salsa2.model.locate import checkpoint_frontend, released_name, released_path


def dump_similarities(params: Params, model_dir: str | Path, data_dir: str | Path, features_dir: str | Path,
                      text_features: str | Path, out_path: str | Path) -> None:
    """The train-set audio and caption embeddings of one teacher (its similarities' factors), with ids.

    Captions are normalised as the model's config.json says (``text_normalize``, else ``text.normalize``); the
    cached text features are used only for a frozen text encoder."""
    model, info = load_checkpoint(model_dir)
    data = load_split(data_dir, "train", features_dir, model.frontend,
                      info.get("text_normalize", params.text.normalize))
    store = text_store(params, text_features) if model.text_encoder.frozen else None
    audio = embed_split_audio(model, data)
    text = embed_captions(model, data, store)
    sim = similarity_matrix(model, data, store) if model.tap is not None else None
    save_similarities(out_path, data.audio_ids, data.caption_ids, audio, text, similarity=sim)


def dump_teacher(params: Params, member: str, models_dir: str | Path, released_dir: str | Path,
                 data_dir: str | Path, features_root: str | Path, text_features: str | Path,
                 out_path: str | Path) -> Path:
    """:func:`dump_similarities` of teacher ``member`` (an encoder of ``encoders``, or ``released-<name>``);
    returns the checkpoint folder it read."""
    if released_name(member) is None:
        model_dir = Path(models_dir) / member
        features = Path(features_root) / params.encoders[member]
    else:
        model_dir = released_path(member, released_dir)
        frontend = checkpoint_frontend(model_dir)
        features = cache_for(feature_caches(features_root), frontend, f"teacher {member} ({model_dir})",
                             features_root)
    dump_similarities(params, model_dir, data_dir, features, text_features, out_path)
    return model_dir

