"""Distillation from estimated correspondences (Primus et al. 2024, L_dist), and its mix with L_sup
(Primus et al. 2024, sec. 5.3)."""

from __future__ import annotations

import torch
from torch import nn

from salsa2.training.losses import LOSSES
from salsa2.training.losses.base import pick_target, soft_cross_entropy


@LOSSES.register("distill")
class DistillLoss(nn.Module):
    """L_dist = (H(p-hat_a, q_a) + H(p-hat_c, q_c)) / 2, the mean of the two directions.

    As the authors (OptimusPrimus/salsa ``ex_dcase24.training_step``: ``0.5 * (cross_entropy(C, softmax(C_d,
    dim=1)) + cross_entropy(C.T, softmax(C_d.T, dim=1)))``).

    p-hat_a(a_i | c_j) = softmax_i(C-hat_ij / tau_teacher) over the batch's audios, p-hat_c(c_j | a_i) =
    softmax_j(C-hat_ij / tau_teacher) over its captions, where C-hat is the ensemble's mean similarity
    restricted to the batch (``teacher``, or ``teacher["ensemble"]``). q as in NT-Xent at ``tau``. Primus et al.
    2024 use tau = 0.05 for both.
    """

    def __init__(self, tau: float = 0.05, teacher_tau: float | None = None) -> None:
        super().__init__()
        self.tau = tau
        self.teacher_tau = tau if teacher_tau is None else teacher_tau

    def forward(self, sim: torch.Tensor, positives: torch.Tensor, teacher: torch.Tensor | None = None):
        teacher = pick_target(teacher, "ensemble")
        if teacher is None:
            raise ValueError("the distillation loss needs teacher similarities (stage 2 with soft targets)")
        logits = sim / self.tau
        t = teacher.to(sim.dtype) / self.teacher_tau
        p_audio = torch.softmax(t, dim=0)
        p_caption = torch.softmax(t, dim=1)
        loss = 0.5 * (soft_cross_entropy(logits, p_audio, 0) + soft_cross_entropy(logits, p_caption, 1))
        return {"distill_loss": loss}


class MixedLoss(nn.Module):
    """lambda * L_sup + (1 - lambda) * L_dist, the weight applied exactly once (Primus et al. 2024, sec. 5.3).

    Terms whose weight is 0 are not computed. The unweighted values are reported as ``sup`` and ``dist``.
    """

    def __init__(self, supervised: nn.Module, distill: nn.Module, sup_weight: float) -> None:
        super().__init__()
        if not 0.0 <= sup_weight <= 1.0:
            raise ValueError(f"sup_weight must lie in [0, 1], got {sup_weight}")
        self.supervised = supervised
        self.distill = distill
        self.sup_weight = sup_weight

    def forward(self, sim: torch.Tensor, positives: torch.Tensor, teacher: torch.Tensor | None = None):
        out: dict[str, torch.Tensor] = {}
        if self.sup_weight > 0:
            sup = sum(v for k, v in self.supervised(sim, positives, teacher).items() if k.endswith("_loss"))
            out["sup_loss"] = self.sup_weight * sup
            out["sup"] = sup.detach()
        if self.sup_weight < 1:
            dist = self.distill(sim, positives, teacher)["distill_loss"]
            out["dist_loss"] = (1 - self.sup_weight) * dist
            out["dist"] = dist.detach()
        return out


class BlendedDistill(nn.Module):
    """(1 - beta) L_dist + beta L_ListNet: stage-2 targets from the ensemble and from caption relevances.

    An extension: none of the cited papers combines the two. Cross-entropy is linear in its target, so with ListNet's
    ``direction: both`` and equal temperatures this is distillation towards the mixture
    ``(1 - beta) p-hat + beta p_relevance`` in each direction. Reported under ``distill_loss``.
    """

    def __init__(self, distill: nn.Module, listnet: nn.Module, relevance_weight: float) -> None:
        super().__init__()
        if not 0.0 <= relevance_weight <= 1.0:
            raise ValueError(f"relevance_weight must lie in [0, 1], got {relevance_weight}")
        self.distill, self.listnet, self.weight = distill, listnet, relevance_weight

    def forward(self, sim: torch.Tensor, positives: torch.Tensor, teacher=None):
        out = sim.new_zeros(())
        if self.weight < 1:
            out = out + (1 - self.weight) * self.distill(sim, positives, teacher)["distill_loss"]
        if self.weight > 0:
            out = out + self.weight * self.listnet(sim, positives, teacher)["listnet_loss"]
        return {"distill_loss": out}
