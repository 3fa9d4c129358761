"""NT-Xent / symmetric InfoNCE with positives by clip identity (Primus et al. 2024, L_sup)."""

from __future__ import annotations

import torch
from torch import nn

from salsa2.training.losses import LOSSES
from salsa2.training.losses.base import positives_to_target, soft_cross_entropy

POSITIVE_WEIGHTINGS = ("entries", "queries")


def positive_entries_loss(logits: torch.Tensor, positives: torch.Tensor) -> torch.Tensor:
    """-(1/2) [mean_{(i,j) in P} log q_a(a_i | c_j) + mean_{(i,j) in P} log q_c(c_j | a_i)].

    The authors' L_sup (OptimusPrimus/salsa ``ex_dcase24.training_step``:
    ``-0.5 * (C_audio[I].mean() + C_text[I].mean())``): each direction's log-probabilities averaged over the
    positive entries of the mask, the two directions averaged.
    """
    if not bool(positives.any(0).all() and positives.any(1).all()):
        raise ValueError("a query in the batch has no positive; build `positives` from clip ids")
    audio_given_caption = torch.log_softmax(logits, dim=0)[positives].mean()
    caption_given_audio = torch.log_softmax(logits, dim=1)[positives].mean()
    return -0.5 * (audio_given_caption + caption_given_audio)


@LOSSES.register("nt_xent")
class NTXentLoss(nn.Module):
    """L_sup = (H(p_a, q_a) + H(p_c, q_c)) / 2, the mean of the two directions (as the authors).

    q_a(a_i | c_j) = softmax over the batch's audios of C_ij / tau (one distribution per caption) and
    q_c(c_j | a_i) = softmax over the batch's captions (one per audio). Positives: a caption's own clip (every
    copy of it in the batch) and all of a clip's captions. ``positives`` says how they are weighted:
    ``entries`` (default, the authors') averages log q over the positive entries of the mask; ``queries``
    gives every query a target uniform over its positives and averages over queries.
    The two agree when every query has the same number of positives (one caption per clip: the one-hot
    diagonal target).
    """

    def __init__(self, tau: float = 0.05, positives: str = "entries") -> None:
        super().__init__()
        if positives not in POSITIVE_WEIGHTINGS:
            raise ValueError(f"nt_xent positives must be one of {POSITIVE_WEIGHTINGS}, got {positives!r}")
        self.tau = tau
        self.positives = positives

    def forward(self, sim: torch.Tensor, positives: torch.Tensor, teacher: torch.Tensor | None = None):
        logits = sim / self.tau
        if self.positives == "entries":
            return {"nt_xent_loss": positive_entries_loss(logits, positives.bool())}
        audio_given_caption = soft_cross_entropy(logits, positives_to_target(positives, 0), dim=0)
        caption_given_audio = soft_cross_entropy(logits, positives_to_target(positives, 1), dim=1)
        return {"nt_xent_loss": 0.5 * (audio_given_caption + caption_given_audio)}
