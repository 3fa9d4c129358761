"""ListNet on graded relevances (Xie et al. 2024, sec. III-B, eqs. 2-4)."""

from __future__ import annotations

import torch
from torch import nn

from salsa2.training.losses import LOSSES
from salsa2.training.losses.base import pick_target, soft_cross_entropy

DIRECTIONS = ("audio", "text", "both")


@LOSSES.register("listnet")
class ListNetLoss(nn.Module):
    """L = -sum_j p(y_j | x_i) log q(y_j | x_i), averaged over the queries.

    p = softmax(g / omega) over the batch's audios for a caption query (eq. 2), q = softmax(C / tau) (eq. 3),
    g the relevances (``teacher``, or ``teacher["relevance"]``; ``salsa2.distill.relevance``). ``direction``: ``audio``
    ranks audios for each caption (ListNet_audio, text -> audio), ``text`` ranks captions for each audio (sec.
    IV-C, x and y swapped), ``both`` averages the two (ListNet_audio+text; the mean, on the scale of L_sup and
    L_dist, so that ``BlendedDistill`` mixes like with like). Xie et al. 2024: omega = tau = 0.05.
    With all mass of p on the paired audio this is InfoNCE (sec. V).
    """

    def __init__(self, omega: float = 0.05, tau: float = 0.05, direction: str = "both", reduce: str = "max") -> None:
        super().__init__()
        if direction not in DIRECTIONS:
            raise ValueError(f"listnet direction must be one of {DIRECTIONS}, got {direction!r}")
        self.omega, self.tau, self.direction = omega, tau, direction
        self.reduce = reduce  # read by the relevance provider (salsa2.distill.relevance.CaptionRelevance)

    def forward(self, sim: torch.Tensor, positives: torch.Tensor, teacher=None):
        g = pick_target(teacher, "relevance")
        if g is None:
            raise ValueError("the ListNet loss needs relevances (teacher['relevance'], salsa2.distill.relevance)")
        logits = sim / self.tau
        target = g.to(sim.dtype) / self.omega
        loss = sim.new_zeros(())
        if self.direction in ("audio", "both"):
            loss = loss + soft_cross_entropy(logits, torch.softmax(target, dim=0), dim=0)
        if self.direction in ("text", "both"):
            loss = loss + soft_cross_entropy(logits, torch.softmax(target, dim=1), dim=1)
        return {"listnet_loss": loss / 2 if self.direction == "both" else loss}
