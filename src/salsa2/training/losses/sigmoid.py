"""Sigmoid loss with learnable temperature and bias (Tymofieiev 2025, eq. 3.3, from SigLIP)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from salsa2.training.losses import LOSSES


@LOSSES.register("sigmoid")
class SigmoidLoss(nn.Module):
    """L = -1/|T| sum_ij log sigmoid(z_ij (t x_i.y_j + b)), z_ij = +1 for matching pairs, -1 otherwise.

    Signs as in SigLIP: logit = t * x.y + b. Tymofieiev 2025 prints eq. 3.3 with ``-t x.y + b``, which with
    b = -10 would start every pair as a match; the SigLIP form starts every pair as a non-match, which is the
    right prior when most pairs are negatives. t = exp(log_t) stays positive; init t = 1, b = -10 (Tymofieiev 2025).
    The sum runs over all pairs and is divided by the number of captions T in the batch.
    """

    def __init__(self, t_init: float = 1.0, b_init: float = -10.0) -> None:
        super().__init__()
        self.log_t = nn.Parameter(torch.tensor(math.log(t_init)))
        self.b = nn.Parameter(torch.tensor(float(b_init)))

    def forward(self, sim: torch.Tensor, positives: torch.Tensor, teacher: torch.Tensor | None = None):
        logits = self.log_t.exp() * sim + self.b
        z = positives.float() * 2 - 1
        loss = -F.logsigmoid(z * logits).sum() / sim.shape[1]
        return {"sigmoid_loss": loss, "t": self.log_t.exp().detach(), "b": self.b.detach()}
