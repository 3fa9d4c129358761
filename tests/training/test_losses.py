"""Training objectives on hand-computed cases (Tymofieiev 2025; Xie et al. 2024, 002, 004)."""

import math

import pytest
import torch

from salsa2.training.losses import LOSSES, total_loss
from salsa2.training.losses.distill import BlendedDistill, DistillLoss, MixedLoss
from salsa2.training.losses.listnet import ListNetLoss
from salsa2.training.losses.ntxent import NTXentLoss
from salsa2.training.losses.sigmoid import SigmoidLoss


def _sim(seed=0, a=3, t=3):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(a, t, generator=g) * 2 - 1


def test_ntxent_on_a_hand_computed_2x2_case():
    sim = torch.tensor([[0.5, 0.1], [0.2, 0.3]])
    tau = 0.1  # logits [[5, 1], [2, 3]]
    # captions -> audios (columns): -log(e^5/(e^5+e^2)) and -log(e^3/(e^1+e^3)); audios -> captions (rows)
    t2a = (math.log(1 + math.exp(-3)) + math.log(1 + math.exp(-2))) / 2
    a2t = (math.log(1 + math.exp(-4)) + math.log(1 + math.exp(-1))) / 2
    out = NTXentLoss(tau)(sim, torch.eye(2, dtype=torch.bool))
    assert out["nt_xent_loss"].item() == pytest.approx((t2a + a2t) / 2, rel=1e-6)  # mean of the directions


def test_two_captions_of_one_clip_are_both_positives_in_both_directions():
    # clip 0 has captions 0 and 1, clip 1 has caption 2
    positives = torch.tensor([[True, True, False], [False, False, True]])
    sim = torch.tensor([[0.9, 0.8, 0.1], [0.2, 0.1, 0.7]])
    loss = NTXentLoss(0.05)
    base = loss(sim, positives)["nt_xent_loss"]
    # Raising caption 1's similarity to its own clip must lower the loss (it is a positive, not a negative) ...
    raised = sim.clone()
    raised[0, 1] = 0.9
    assert loss(raised, positives)["nt_xent_loss"] < base
    # ... and exactly, as the authors: each direction's log-probabilities averaged over the 3 positive entries.
    logits = sim / 0.05
    a2t = -(torch.log_softmax(logits[0], 0)[0] + torch.log_softmax(logits[0], 0)[1]
            + torch.log_softmax(logits[1], 0)[2]) / 3
    t2a = -(torch.log_softmax(logits[:, 0], 0)[0] + torch.log_softmax(logits[:, 1], 0)[0]
            + torch.log_softmax(logits[:, 2], 0)[1]) / 3
    assert base.item() == pytest.approx(((a2t + t2a) / 2).item(), rel=1e-6)
    # positives="queries": audio 0's target is uniform over captions 0 and 1, then the mean over the 2 audios.
    a2t_q = -(0.5 * torch.log_softmax(logits[0], 0)[0] + 0.5 * torch.log_softmax(logits[0], 0)[1]
              + torch.log_softmax(logits[1], 0)[2]) / 2
    queries = NTXentLoss(0.05, positives="queries")(sim, positives)["nt_xent_loss"]
    assert queries.item() == pytest.approx(((a2t_q + t2a) / 2).item(), rel=1e-6)
    assert abs(queries.item() - base.item()) > 1e-3  # the weightings differ when positive counts differ
    # A one-hot diagonal target would call caption 1 a negative of clip 0: gradient pushes sim[0, 1] down.
    s = sim.clone().requires_grad_(True)
    loss(s, positives)["nt_xent_loss"].backward()
    assert s.grad[0, 1] < 0  # descent raises sim[0, 1]


def test_distillation_with_one_hot_targets_equals_ntxent():
    sim = _sim(1)
    # A teacher whose similarities are +-large gives one-hot softmax targets at any temperature.
    teacher = torch.eye(3) * 100.0
    dist = DistillLoss(tau=0.05, teacher_tau=0.05)(sim, torch.eye(3, dtype=torch.bool), teacher)["distill_loss"]
    sup = NTXentLoss(0.05)(sim, torch.eye(3, dtype=torch.bool))["nt_xent_loss"]
    assert dist.item() == pytest.approx(sup.item(), rel=1e-6)


def test_distillation_targets_are_softmax_of_the_ensemble_in_both_directions():
    sim, teacher = _sim(2), _sim(3)
    out = DistillLoss(tau=0.1, teacher_tau=0.2)(sim, torch.eye(3, dtype=torch.bool), teacher)["distill_loss"]
    logq = sim / 0.1
    p_a, p_c = torch.softmax(teacher / 0.2, 0), torch.softmax(teacher / 0.2, 1)
    expected = -(p_a * torch.log_softmax(logq, 0)).sum(0).mean() - (p_c * torch.log_softmax(logq, 1)).sum(1).mean()
    assert out.item() == pytest.approx(expected.item() / 2, rel=1e-6)  # mean of the directions (authors)


def test_mixed_loss_applies_the_weight_once():
    sim, teacher, pos = _sim(4), _sim(5), torch.eye(3, dtype=torch.bool)
    sup, dist = NTXentLoss(0.05), DistillLoss(0.05)
    l_sup = sup(sim, pos)["nt_xent_loss"]
    l_dist = dist(sim, pos, teacher)["distill_loss"]
    out = MixedLoss(sup, dist, 0.3)(sim, pos, teacher)
    assert total_loss(out).item() == pytest.approx((0.3 * l_sup + 0.7 * l_dist).item(), rel=1e-6)


def test_sigmoid_loss_at_init_on_a_2x2_case():
    sim = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    out = SigmoidLoss(t_init=1.0, b_init=-10.0)(sim, torch.eye(2, dtype=torch.bool))
    # logits t*x.y + b: matches 1 - 10 = -9 (z = +1), non-matches -10 (z = -1); sum over pairs / 2 captions
    expected = (2 * math.log(1 + math.exp(9)) + 2 * math.log(1 + math.exp(-10))) / 2
    assert out["sigmoid_loss"].item() == pytest.approx(expected, rel=1e-6)
    assert out["t"].item() == pytest.approx(1.0) and out["b"].item() == pytest.approx(-10.0)


def test_listnet_with_binary_relevances_equals_infonce_text_to_audio():
    sim = _sim(6, 4, 4)
    pos = torch.eye(4, dtype=torch.bool)
    # omega -> 0 puts all of p's mass on the relevant audio; 0.05 with g in {0, 1} is within 1e-7 of that.
    listnet = ListNetLoss(omega=0.05, tau=0.05, direction="audio")(sim, pos, pos.float())["listnet_loss"]
    infonce_t2a = -torch.log_softmax(sim / 0.05, dim=0).diagonal().mean()
    assert listnet.item() == pytest.approx(infonce_t2a.item(), rel=1e-6)
    both = ListNetLoss(direction="both")(sim, pos, {"relevance": pos.float()})["listnet_loss"]
    nt_xent = NTXentLoss(0.05)(sim, pos)["nt_xent_loss"]
    assert both.item() == pytest.approx(nt_xent.item(), rel=1e-6)


def test_listnet_hand_computed_graded_case():
    sim = torch.tensor([[0.2, 0.0], [0.1, 0.3]])
    g = torch.tensor([[0.8, 0.4], [0.6, 0.9]])
    out = ListNetLoss(omega=0.5, tau=0.1, direction="text")(sim, torch.eye(2, dtype=torch.bool), g)
    # audio 0 over captions: p = softmax([1.6, 0.8]), q = softmax([2, 0]); audio 1: p = softmax([1.2, 1.8]), q = [1, 3]
    def ce(p_logits, q_logits):
        p, logq = torch.softmax(torch.tensor(p_logits), 0), torch.log_softmax(torch.tensor(q_logits), 0)
        return -(p * logq).sum().item()
    assert out["listnet_loss"].item() == pytest.approx((ce([1.6, 0.8], [2.0, 0.0]) + ce([1.2, 1.8], [1.0, 3.0])) / 2,
                                                       rel=1e-6)


def test_blended_distillation_is_distillation_towards_the_mixture():
    sim, teacher, g = _sim(7), _sim(8), torch.rand(3, 3, generator=torch.Generator().manual_seed(9))
    pos = torch.eye(3, dtype=torch.bool)
    dist, listnet = DistillLoss(0.05, 0.05), ListNetLoss(0.05, 0.05, "both")
    out = BlendedDistill(dist, listnet, 0.25)(sim, pos, {"ensemble": teacher, "relevance": g})["distill_loss"]
    logq = sim / 0.05
    expected = 0.0
    for dim in (0, 1):
        target = 0.75 * torch.softmax(teacher / 0.05, dim) + 0.25 * torch.softmax(g / 0.05, dim)
        expected = expected - (target * torch.log_softmax(logq, dim)).sum(dim).mean() / 2
    assert out.item() == pytest.approx(expected.item(), rel=1e-6)


def test_losses_are_selectable_by_name():
    assert {"nt_xent", "sigmoid", "distill", "listnet"} <= set(LOSSES.names())
    with pytest.raises(ValueError, match="direction"):
        LOSSES.build("listnet", direction="sideways")
    with pytest.raises(ValueError, match="positives"):
        LOSSES.build("nt_xent", positives="some")
