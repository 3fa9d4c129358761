"""NT-Xent / symmetric InfoNCE with positives by clip identity (seed 002, L_sup)."""

from __future__ import annotations

import torch
from torch import nn

from salsa2.losses import LOSSES
from salsa2.losses.base import positives_to_target, soft_cross_entropy


@LOSSES.register("nt_xent")
class NTXentLoss(nn.Module):
    """L_sup = H(p_a, q_a) + H(p_c, q_c).

    q_a(a_i | c_j) = softmax over the batch's audios of C_ij / tau (one distribution per caption) and
    q_c(c_j | a_i) = softmax over the batch's captions (one per audio). The targets p are uniform over the
    positives: a caption's own clip (every copy of it in the batch) and all of a clip's captions. With one
    caption per clip and distinct clips this is the usual one-hot diagonal target.
    """

    def __init__(self, tau: float = 0.05) -> None:
        super().__init__()
        self.tau = tau

    def forward(self, sim: torch.Tensor, positives: torch.Tensor, teacher: torch.Tensor | None = None):
        logits = sim / self.tau
        audio_given_caption = soft_cross_entropy(logits, positives_to_target(positives, 0), dim=0)
        caption_given_audio = soft_cross_entropy(logits, positives_to_target(positives, 1), dim=1)
        return {"nt_xent_loss": audio_given_caption + caption_given_audio}
