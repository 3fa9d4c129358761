"""The training loop shared by stage 1 and stage 2: Adam, warm-up + cosine, validation mAP@10 picks the epoch."""

from __future__ import annotations

import copy
import logging
import math
import time
from dataclasses import dataclass, field
from collections.abc import Callable

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from salsa2.augment import (
    AugmentParams,
    MaskedViewBank,
    draw_mixing,
    masked_caption_embeddings,
    mix_logmel,
    mixco_loss,
)
from salsa2.config import TrainParams
from salsa2.data import RetrievalData, collate_mels, iterate_batches, num_batches
from salsa2.embed import similarity_matrix
from salsa2.losses import total_loss
from salsa2.metrics import bidirectional_metrics
from salsa2.model import DualEncoder
from salsa2.targets import TargetProvider
from salsa2.text_features import TextFeatureStore

log = logging.getLogger(__name__)


def lr_factor(progress: float, warmup: float, total: float, end_factor: float) -> float:
    """Schedule as a pure function of fractional epoch: linear warm-up to 1, then cosine to ``end_factor``."""
    if warmup > 0 and progress < warmup:
        return progress / warmup
    span = max(total - warmup, 1e-12)
    t = min(max((progress - warmup) / span, 0.0), 1.0)
    return end_factor + (1 - end_factor) * 0.5 * (1 + math.cos(math.pi * t))


def param_groups(model: DualEncoder, loss_fn: nn.Module, audio_lr: float, text_lr: float, head_lr: float,
                 loss_lr: float) -> list[dict]:
    """One Adam group per module with its own rate (seed 000: encoders and t, b have their own rates)."""
    groups = [
        {"name": "audio_encoder", "params": list(model.audio_encoder.parameters()), "lr": audio_lr},
        {"name": "text_encoder", "params": [p for p in model.text_encoder.parameters() if p.requires_grad],
         "lr": text_lr},
        {"name": "heads", "params": list(model.audio_proj.parameters()) + list(model.text_proj.parameters()),
         "lr": head_lr},
        {"name": "loss", "params": list(loss_fn.parameters()), "lr": loss_lr},
    ]
    for g in groups:
        g["base_lr"] = g["lr"]
    return [g for g in groups if g["params"]]


@dataclass
class FitResult:
    best_epoch: int
    best_val: dict
    history: list[dict] = field(default_factory=list)


def evaluate_model(model: DualEncoder, data: RetrievalData, text_features: TextFeatureStore | None) -> dict:
    sim = similarity_matrix(model, data, text_features)
    return bidirectional_metrics(sim, data.audio_ids, data.caption_audio_ids)


def batch_text(model: DualEncoder, data: RetrievalData, captions: np.ndarray, text_features: TextFeatureStore | None,
               augment: AugmentParams, generator: torch.Generator, views: MaskedViewBank | None = None,
               rng: np.random.Generator | None = None) -> torch.Tensor:
    """(T, D) embeddings of a batch's captions: cached features, the live encoder, or masked tokens (seed 004)."""
    if views is not None:
        assert rng is not None
        return model.encode_text_features(views.lookup(captions, rng))
    if augment.text_mask > 0:
        return masked_caption_embeddings(model, [data.texts[c] for c in captions], augment.text_mask, generator)
    if text_features is not None:
        feats = torch.from_numpy(text_features.lookup([data.caption_ids[c] for c in captions]))
        return model.encode_text_features(feats)
    return model.encode_text([data.texts[c] for c in captions])


def fit(
    model: DualEncoder,
    loss_fn: nn.Module,
    train: RetrievalData,
    val: RetrievalData,
    cfg: TrainParams,
    *,
    audio_lr: float,
    text_lr: float,
    text_features: TextFeatureStore | None = None,
    teacher: TargetProvider | None = None,
    seed: int = 0,
    on_epoch: Callable[[int, dict], None] | None = None,
    batch_size: int | None = None,
    augment: AugmentParams | None = None,
) -> FitResult:
    """Train ``model`` in place; at the end it holds the weights of the epoch with the best val t2a mAP@10."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    augment = augment or AugmentParams()
    aug_rng = np.random.default_rng([seed, 4])  # augmentation draws leave the batch order untouched
    aug_gen = torch.Generator().manual_seed(seed + 4)
    views = (MaskedViewBank(model.text_encoder, train.texts, augment.text_mask, augment.text_mask_views, aug_gen)
             if augment.text_mask > 0 and augment.text_mask_views > 0 else None)
    batch_size = batch_size or cfg.batch_size
    groups = param_groups(model, loss_fn, audio_lr, text_lr if not model.text_encoder.frozen else 0.0, cfg.lr,
                          cfg.loss_lr)
    optimizer = torch.optim.Adam(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps = num_batches(train, batch_size, cfg.layout)
    end_factor = cfg.lr_min / cfg.lr
    max_frames = int(cfg.max_seconds * model.frontend.frames_per_second) if cfg.max_seconds else 0
    best = FitResult(best_epoch=-1, best_val={"t2a/mAP@10": -1.0})
    best_state = None
    for epoch in range(cfg.epochs):
        model.train()
        if model.text_encoder.frozen:
            model.text_encoder.eval()
        loss_fn.train()
        sums: dict[str, float] = {}
        start = time.time()
        bar = tqdm(iterate_batches(train, batch_size, cfg.layout, rng), total=steps, desc=f"epoch {epoch}",
                   unit="batch", leave=False)
        for step, batch in enumerate(bar):
            factor = lr_factor(epoch + step / steps, cfg.warmup_epochs, cfg.epochs, end_factor)
            for g in optimizer.param_groups:
                g["lr"] = g["base_lr"] * factor
            mel, lengths = collate_mels([train.mel(i) for i in batch.audio], max_frames, rng)
            audio = model.encode_audio_side(mel, lengths)
            text = batch_text(model, train, batch.captions, text_features, augment, aug_gen, views, aug_rng)
            sim = model.similarity(audio, text)
            targets = teacher.block(batch.audio, batch.captions) if teacher is not None else None
            terms = loss_fn(sim, batch.positives, targets)
            if augment.mixco:  # seed 004 eqs. 8-12
                partner, lam = draw_mixing(len(batch.audio), aug_rng)
                mixed = model.encode_audio_side(*mix_logmel(mel, lengths, partner, lam, model.frontend.log_offset))
                terms["mixco_loss"] = mixco_loss(model.similarity(mixed, text), batch.positives, partner, lam,
                                                 augment.mixco_tau)
            loss = total_loss(terms)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip:
                nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            optimizer.step()
            for k, v in terms.items():
                sums[k] = sums.get(k, 0.0) + float(v.detach())
            sums["loss"] = sums.get("loss", 0.0) + float(loss.detach())
            bar.set_postfix(loss=f"{float(loss.detach()):.3f}")
        train_stats = {f"train/{k}": v / steps for k, v in sums.items()}
        val_metrics = evaluate_model(model, val, text_features)
        record = {"epoch": epoch, **train_stats, **{f"val/{k}": v for k, v in val_metrics.items()},
                  "lr": optimizer.param_groups[0]["lr"], "seconds": time.time() - start}
        best.history.append(record)
        log.info("epoch %d loss %.4f val t2a mAP@10 %.4f (%.1f s)", epoch, train_stats["train/loss"],
                 val_metrics["t2a/mAP@10"], record["seconds"])
        if val_metrics["t2a/mAP@10"] > best.best_val["t2a/mAP@10"]:
            best.best_epoch, best.best_val = epoch, val_metrics
            best_state = copy.deepcopy({k: v for k, v in model.state_dict().items()})
        if on_epoch is not None:
            on_epoch(epoch, record)
    if best_state is not None:
        model.load_state_dict(best_state)
    return best
