"""Embedding whole splits with a trained dual encoder (evaluation, similarity dumps, search)."""

from __future__ import annotations

import numpy as np
import torch

from salsa2.features.splits import RetrievalData, collate_mels
from salsa2.evaluation.metrics import ScoreFn, embedding_scores, matrix_scores
from salsa2.model.dual_encoder import AudioSide, DualEncoder
from salsa2.features.text_cache import TextFeatureStore


@torch.no_grad()
def embed_split_audio(model: DualEncoder, data: RetrievalData, batch_size: int = 32) -> np.ndarray:
    """(A, D) normalised audio embeddings, in ``data.audio_ids`` order (batched by length for speed)."""
    model.eval()
    device = next(model.parameters()).device
    order = np.argsort(data.frames(), kind="stable")
    out = np.zeros((len(order), model.cfg.embed_dim), dtype=np.float32)
    for s in range(0, len(order), batch_size):
        idx = order[s : s + batch_size]
        mel, lengths = collate_mels([data.mel(i) for i in idx])
        out[idx] = model.encode_audio(mel.to(device), lengths.to(device)).float().cpu().numpy()
    return out


@torch.no_grad()
def embed_captions(
    model: DualEncoder, data: RetrievalData, text_features: TextFeatureStore | None = None, batch_size: int = 256
) -> np.ndarray:
    """(T, D) normalised caption embeddings in ``data.caption_ids`` order."""
    model.eval()
    device = next(model.parameters()).device
    out = []
    for s in range(0, len(data.caption_ids), batch_size):
        if text_features is not None:
            feats = torch.from_numpy(text_features.lookup(data.caption_ids[s : s + batch_size])).to(device)
            out.append(model.encode_text_features(feats).float().cpu().numpy())
        else:
            out.append(model.encode_text(data.texts[s : s + batch_size]).float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, model.cfg.embed_dim), np.float32)


@torch.no_grad()
def embed_audio_side(model: DualEncoder, data: RetrievalData, batch_size: int = 32) -> AudioSide:
    """What ``model.similarity`` needs for every clip of ``data``: embeddings, or (TAP) padded tokens + weights."""
    if model.tap is None:
        return AudioSide(embedding=torch.from_numpy(embed_split_audio(model, data, batch_size)))
    model.eval()
    order = np.argsort(data.frames(), kind="stable")
    parts: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
    for s in range(0, len(order), batch_size):
        idx = order[s : s + batch_size]
        mel, lengths = collate_mels([data.mel(i) for i in idx])
        tokens, weights = model.audio_tokens(mel, lengths)
        for row, i in enumerate(idx):
            keep = int((weights[row] > 0).nonzero().max()) + 1
            parts[int(i)] = (tokens[row, :keep].float(), weights[row, :keep].float())
    width = max(t.shape[0] for t, _ in parts.values())
    tokens_out = torch.zeros(len(order), width, model.cfg.embed_dim)
    weights_out = torch.zeros(len(order), width)
    for i, (t, w) in parts.items():
        tokens_out[i, : t.shape[0]] = t
        weights_out[i, : w.shape[0]] = w
    return AudioSide(tokens=tokens_out, weights=weights_out)


@torch.no_grad()
def similarity_matrix(model: DualEncoder, data: RetrievalData, text_features: TextFeatureStore | None = None,
                      block: int = 256) -> np.ndarray:
    """(A, T) similarities of every clip and caption of ``data`` (TAP: computed ``block`` captions at a time)."""
    audio = embed_audio_side(model, data)
    text = torch.from_numpy(embed_captions(model, data, text_features))
    model.eval()
    cols = [model.similarity(audio, text[s : s + block]) for s in range(0, len(text), block)]
    return torch.cat(cols, dim=1).float().numpy() if cols else np.zeros((len(audio), 0), np.float32)


def model_scores(model: DualEncoder, data: RetrievalData, store: TextFeatureStore | None) -> ScoreFn:
    """A model's audio x caption similarities on ``data`` as a block function for the metrics.

    Mean pooling keeps only the embeddings (O(N D); the metrics ask for one block at a time); text-aware
    pooling makes the similarity caption-dependent, so its matrix is computed. ``store`` is used only when the
    text encoder is frozen.
    """
    store = store if model.text_encoder.frozen else None
    if model.tap is None:
        return embedding_scores(embed_split_audio(model, data), embed_captions(model, data, store))
    return matrix_scores(similarity_matrix(model, data, store))
