"""Mixco and text token masking (Munakata et al. 2024, sec. 4.2)."""

import math

import numpy as np
import pytest
import torch

from salsa2.training.augment import mask_tokens, mix_logmel, mixco_loss


def test_mix_logmel_mixes_power_with_squared_weights_and_pads_with_silence():
    off = 1e-5
    p0, p1 = 4.0, 9.0
    mel = torch.full((2, 1, 4), 0.0)
    mel[0] = math.log(p0 + off)
    mel[1, :, :2] = math.log(p1 + off)  # clip 1 has 2 frames, then padding
    lengths = torch.tensor([4, 2])
    out, new_len = mix_logmel(mel, lengths, torch.tensor([1, 0]), torch.tensor([0.25, 0.5]), off)
    assert new_len.tolist() == [4, 4]
    # clip 0: 0.25^2 * 4 + 0.75^2 * 9 on the first two frames, 0.25^2 * 4 where clip 1 is silent
    torch.testing.assert_close(out[0, 0, :2].exp() - off, torch.full((2,), 0.0625 * 4 + 0.5625 * 9))
    torch.testing.assert_close(out[0, 0, 2:].exp() - off, torch.full((2,), 0.0625 * 4))
    torch.testing.assert_close(out[1, 0, :2].exp() - off, torch.full((2,), 0.25 * 9 + 0.25 * 4))


def test_mixco_loss_one_caption_per_clip_matches_eqs_10_to_12():
    sim = torch.tensor([[0.3, 0.1, -0.2], [0.0, 0.4, 0.1], [0.2, -0.1, 0.5]])
    partner, lam, tau = torch.tensor([2, 0, 1]), torch.tensor([0.7, 0.4, 0.9]), 0.1
    out = mixco_loss(sim, torch.eye(3, dtype=torch.bool), partner, lam, tau)
    logits = sim / tau
    a2t = t2a = 0.0
    for i in range(3):  # eq. 10 (soft-label form) and eq. 11
        row, col = torch.log_softmax(logits[i], 0), torch.log_softmax(logits[:, i], 0)
        a2t -= lam[i] * row[i] + (1 - lam[i]) * row[partner[i]]
        col_partner = torch.log_softmax(logits[:, partner[i]], 0)  # caption phi(i) as query, mixed clip i
        t2a -= lam[i] * col[i] + (1 - lam[i]) * col_partner[i]
    assert out.item() == pytest.approx(((a2t / 3 + t2a / 3) / 2).item(), rel=1e-6)


def test_mixco_with_lambda_one_is_ntxent():
    from salsa2.training.losses.ntxent import NTXentLoss

    g = torch.Generator().manual_seed(0)
    sim = torch.rand(4, 6, generator=g)
    positives = torch.tensor([[1, 1, 0, 0, 0, 0], [0, 0, 1, 0, 0, 0], [0, 0, 0, 1, 1, 0], [0, 0, 0, 0, 0, 1]]).bool()
    out = mixco_loss(sim, positives, torch.tensor([1, 2, 3, 0]), torch.ones(4), 0.05)
    ntxent = NTXentLoss(0.05, positives="queries")(sim, positives)["nt_xent_loss"]
    assert out.item() == pytest.approx(ntxent.item(), rel=1e-6)


def test_mask_tokens_masks_about_p_of_real_tokens_and_never_special_or_padding():
    ids = torch.tensor([[101] + [7] * 1000 + [102, 0, 0]])
    attention = torch.tensor([[1] * 1002 + [0, 0]])
    out = mask_tokens(ids, attention, [0, 101, 102, 103], 103, 0.15, torch.Generator().manual_seed(0))
    assert out[0, 0] == 101 and out[0, 1001] == 102 and (out[0, 1002:] == 0).all()
    share = (out[0, 1:1001] == 103).float().mean().item()
    assert 0.12 < share < 0.18
    again = mask_tokens(ids, attention, [0, 101, 102, 103], 103, 0.15, torch.Generator().manual_seed(0))
    assert torch.equal(out, again)
    assert torch.equal(mask_tokens(ids, attention, [0, 101, 102, 103], 103, 0.0), ids)


def test_draw_mixing_is_seeded():
    from salsa2.training.augment import draw_mixing

    a = draw_mixing(8, np.random.default_rng(3))
    b = draw_mixing(8, np.random.default_rng(3))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert sorted(a[0].tolist()) == list(range(8)) and ((a[1] > 0) & (a[1] < 1)).all()
