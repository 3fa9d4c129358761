"""Audio-caption relevances from caption similarities (Xie et al. 2024, sec. III-A).

The relevance of audio ``y_j`` to caption ``x_i`` is read off the captions of ``y_j``:
``g(x_i, y_j) = f(h(x_i, x_j))`` (eq. 1) with ``h`` the cosine similarity of Sentence-BERT caption
embeddings and ``f`` the logistic fit of eq. 5, ``f(h) = 1 / (1 + exp(2.73 - 4.58 h))``.

Xie et al. 2024 train on caption-audio pairs, so ``x_j`` is the one caption paired with ``y_j`` in the batch. Here a
batch may hold several captions of a clip (``layout: clips``) or one clip twice (``layout: pairs``); the
reference captions of clip ``a`` are all its captions in the batch (the ``positives`` column set) and their
similarities are reduced by ``max`` (default: the annotated pair keeps the top relevance ``f(1)``, as in
Xie et al. 2024)
or ``mean``. With one caption per clip and distinct clips both reductions are exactly Xie et al. 2024.
The caption embeddings are the frozen text features (``data/text_features.npz``; all-MiniLM-L6-v2, mean
pooled, by default), computed once per dataset.
"""

from __future__ import annotations

import numpy as np
import torch

LOGISTIC_A = 2.73  # Xie et al. 2024, eq. 5 (beta regression on crowdsourced relevance ratings)
LOGISTIC_B = 4.58


def logistic_relevance(h: torch.Tensor) -> torch.Tensor:
    """Xie et al. 2024, eq. 5: g = 1 / (1 + exp(2.73 - 4.58 h)) for cosine similarities h in [-1, 1]."""
    return torch.sigmoid(LOGISTIC_B * h - LOGISTIC_A)


def reduce_to_clips(h: torch.Tensor, positives: torch.Tensor, reduce: str = "max") -> torch.Tensor:
    """(T, T) caption-caption similarities -> (A, T) clip-caption similarities.

    Entry (a, i) reduces ``h[i, j]`` over the captions j of clip a in the batch (``positives[a, j]``).
    """
    pos = positives.to(torch.bool)
    if bool((pos.sum(1) == 0).any()):
        raise ValueError("a clip in the batch has none of its captions; relevances need one per clip")
    if reduce == "max":
        masked = h[None, :, :].masked_fill(~pos[:, None, :], float("-inf"))  # (A, T_query, T_ref)
        return masked.amax(-1)
    if reduce == "mean":
        w = pos.to(h.dtype)
        return (w @ h.T) / w.sum(1, keepdim=True)
    raise ValueError(f"reduce must be 'max' or 'mean', got {reduce!r}")


def batch_relevance(caption_emb: torch.Tensor, positives: torch.Tensor, reduce: str = "max") -> torch.Tensor:
    """(A, T) relevances g of the batch's clips to its captions from (T, H) caption embeddings (eqs. 1 and 5)."""
    e = torch.nn.functional.normalize(caption_emb.float(), dim=-1)
    return logistic_relevance(reduce_to_clips(e @ e.T, positives, reduce))


class CaptionRelevance:
    """Relevance blocks for training batches: ``block(audio_idx, caption_idx)`` -> (A, T) tensor g.

    Args:
        features: (N, H) caption embeddings of the training captions, in the training data's caption order.
        caption_audio: (N,) clip index of each caption.
        reduce: how a clip's several reference captions are combined (``max`` or ``mean``).
    """

    def __init__(self, features: np.ndarray, caption_audio: np.ndarray, reduce: str = "max") -> None:
        if len(features) != len(caption_audio):
            raise ValueError(f"{len(features)} caption embeddings for {len(caption_audio)} captions")
        self.features = torch.from_numpy(np.asarray(features, dtype=np.float32))
        self.caption_audio = np.asarray(caption_audio)
        self.reduce = reduce

    def block(self, audio_idx: np.ndarray, caption_idx: np.ndarray) -> torch.Tensor:
        positives = torch.from_numpy(np.asarray(audio_idx)[:, None] == self.caption_audio[caption_idx][None, :])
        return batch_relevance(self.features[caption_idx], positives, self.reduce)
