"""Training-time augmentation (Munakata et al. 2024, sec. 4.2): Mixco on log-mel spectrograms and text token masking.

Both are off by default (``augment.mixco: false``, ``augment.text_mask: 0``).

Mixco (eqs. 8-12). Clip i of the batch is mixed with a random partner phi(i) of the same batch,
``x'_i = lambda_i x_i + (1 - lambda_i) x_phi(i)`` with lambda_i ~ U(0, 1) (eq. 8). The spectrogram cache holds
log-mel power, not waveforms, so the mixture is formed in the power domain,
``P' = lambda^2 P_i + (1 - lambda)^2 P_phi(i)``: the expected power of the waveform mixture (the cross term has
zero mean for independent sources); the shorter clip is padded with silence. The mixed clips are encoded
(eq. 9) and the extra loss ``L_mixco`` (eq. 12) is added to the supervised loss. Eq. 10 as printed applies
lambda to both terms; the soft-label form of Mixco and eq. 11 give the semi-positive weights
``lambda`` / ``1 - lambda``, used here in both directions. Positives are by clip identity, so a clip's several
captions share its weight uniformly (``mixco_loss``). The temperature is ``augment.mixco_tau`` (0.05, the
same tau as the InfoNCE term, as in Munakata et al. 2024).

Text token masking (Munakata et al. 2024: 15 %). Each non-special token is replaced by the tokenizer's mask token with
probability p. This needs the text encoder to run on every batch: with ``text.trainable_layers != 0`` it runs
anyway; with a frozen encoder (``0``) training stops using the cached features and runs the frozen encoder
(forward only, no gradient) on the masked captions; validation and test use unmasked captions (the cache).
Re-masking every batch costs one text-encoder forward per caption and batch (on 2 CPU cores about as much
as the audio encoder's forward and backward). With a frozen encoder ``augment.text_mask_views: k > 0``
instead draws k masked views of every training caption once per training run and, per batch, uses one view
per caption chosen at random (``MaskedViewBank``): k forwards per caption in all, instead of one per epoch.
"""

from __future__ import annotations

import numpy as np
import torch
from tqdm import tqdm

from salsa2.config.params import AugmentParams  # noqa: F401 - defined with the other params (torch-free)
from salsa2.training.losses.base import positives_to_target


def mix_logmel(mel: torch.Tensor, lengths: torch.Tensor, partner: torch.Tensor, lam: torch.Tensor,
               log_offset: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Mixco on log-mel power (Munakata et al. 2024, eq. 8): (B, M, T) log(P + offset) ->
    log(l^2 P_i + (1-l)^2 P_phi(i) + offset).

    Args:
        mel, lengths: a collated batch (padding beyond ``lengths`` is ignored: treated as silence).
        partner: (B,) index phi(i) of each clip's partner; lam: (B,) mixing weights in (0, 1).
    """
    frames = torch.arange(mel.shape[-1], device=mel.device)
    valid = (frames[None, :] < lengths[:, None])[:, None, :]
    power = torch.where(valid, (mel.exp() - log_offset).clamp_min(0.0), torch.zeros_like(mel))
    w = lam.to(mel.dtype)[:, None, None]
    mixed = w.square() * power + (1 - w).square() * power[partner]
    new_lengths = torch.maximum(lengths, lengths[partner])
    out = torch.log(mixed + log_offset)
    keep = (frames[None, :] < new_lengths[:, None])[:, None, :]
    return torch.where(keep, out, torch.zeros_like(out)), new_lengths


def mixco_loss(sim_mixed: torch.Tensor, positives: torch.Tensor, partner: torch.Tensor, lam: torch.Tensor,
               tau: float) -> torch.Tensor:
    """L_mixco = (L^{A->T} + L^{T->A}) / 2 (Munakata et al. 2024, eqs. 10-12), means over queries.

    Halved (Munakata et al. 2024 sums) to stay on the scale of L_sup (the mean of its directions, as in
    Primus et al. 2024).

    Args:
        sim_mixed: (A, T) similarities of the mixed clips and the batch's captions.
        positives: (A, T) caption j belongs to clip i (of the unmixed batch).
        partner, lam: as in ``mix_logmel``.

    A->T: mixed clip i targets its own captions with weight lambda_i and its partner's with 1 - lambda_i.
    T->A: caption c is a (semi-)positive of every mixed clip that holds its clip, with that clip's weight;
    with one caption per clip this is eq. 11 summed over the mixed clips.
    """
    logits = sim_mixed / tau
    lam = lam.to(sim_mixed.dtype)[:, None]
    pos = positives.to(sim_mixed.dtype)
    per_clip = positives_to_target(positives, 1)
    target_a2t = lam * per_clip + (1 - lam) * per_clip[partner]
    a2t = -(target_a2t * torch.log_softmax(logits, dim=1)).sum(1).mean()
    weight_t2a = (lam * pos + (1 - lam) * pos[partner]) / pos.sum(0, keepdim=True).clamp_min(1.0)
    t2a = -(weight_t2a * torch.log_softmax(logits, dim=0)).sum(0).mean()
    return 0.5 * (a2t + t2a)


def mask_tokens(input_ids: torch.Tensor, attention_mask: torch.Tensor, special_ids: list[int], mask_id: int,
                p: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Replace each real, non-special token by ``mask_id`` with probability ``p`` (Munakata et al. 2024: p = 0.15)."""
    maskable = attention_mask.bool() & ~torch.isin(input_ids, torch.tensor(special_ids, dtype=input_ids.dtype))
    draw = torch.rand(input_ids.shape, generator=generator) < p
    return torch.where(maskable & draw, torch.full_like(input_ids, mask_id), input_ids)


def masked_text_features(encoder, texts: list[str], p: float, generator: torch.Generator | None = None):
    """(T, H) pooled text-encoder features of ``texts`` with token masking; no gradient if it is frozen."""
    tokenizer = encoder.tokenizer
    if tokenizer.mask_token_id is None:
        raise ValueError(f"text encoder {encoder.name!r} has no mask token; set augment.text_mask: 0")
    tokens = encoder.tokenize(texts)
    tokens["input_ids"] = mask_tokens(tokens["input_ids"], tokens["attention_mask"], tokenizer.all_special_ids,
                                      tokenizer.mask_token_id, p, generator)
    device = next(encoder.parameters()).device
    tokens = {k: v.to(device) for k, v in tokens.items()}
    with torch.set_grad_enabled(torch.is_grad_enabled() and not encoder.frozen):
        return encoder(tokens)


def masked_caption_embeddings(model, texts: list[str], p: float, generator: torch.Generator | None = None):
    """(T, D) caption embeddings of ``texts`` with token masking (the batch's captions, masked afresh)."""
    return model.encode_text_features(masked_text_features(model.text_encoder, texts, p, generator))


class MaskedViewBank:
    """``views`` masked versions of every caption's frozen features, computed once (``text_mask_views``)."""

    def __init__(self, encoder, texts: list[str], p: float, views: int, generator: torch.Generator,
                 batch_size: int = 256) -> None:
        if not encoder.frozen:
            raise ValueError("augment.text_mask_views needs a frozen text encoder (text.trainable_layers: 0); "
                             "a trained encoder must see fresh masks: set text_mask_views: 0")
        encoder.eval()
        with torch.no_grad():
            self.features = torch.stack([
                torch.cat([masked_text_features(encoder, texts[s : s + batch_size], p, generator)
                           for s in tqdm(range(0, len(texts), batch_size), desc=f"masked view {v + 1}/{views}",
                                         leave=False)])
                for v in range(views)
            ])  # (views, N, H)

    def lookup(self, captions: np.ndarray, rng: np.random.Generator) -> torch.Tensor:
        view = torch.from_numpy(rng.integers(0, self.features.shape[0], len(captions)))
        return self.features[view, torch.from_numpy(np.asarray(captions))]


def draw_mixing(n: int, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """A random partner permutation phi and lambda_i ~ U(0, 1) (Munakata et al. 2024, eq. 8) for a batch of n clips."""
    return torch.from_numpy(rng.permutation(n)), torch.from_numpy(rng.uniform(0.0, 1.0, n).astype(np.float32))
