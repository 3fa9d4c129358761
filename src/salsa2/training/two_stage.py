"""Stages stage1@<encoder> and stage2@<encoder>: build a dual encoder from params and train it
(Primus et al. 2024, sec. 3: stage 1 supervised, stage 2 distilled from the ensemble's C-hat)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from collections.abc import Callable

import torch

from salsa2.model.checkpoint import copy_weights, save_checkpoint
from salsa2.config.params import Params
from salsa2.features.splits import RetrievalData, load_split
from salsa2.training.distributed import current
from salsa2.distill.ensemble import teacher_members
from salsa2.audio.frontend_config import FrontendConfig
from salsa2.training.losses import LOSSES
from salsa2.training.losses.distill import BlendedDistill, MixedLoss
from salsa2.model.dual_encoder import DualEncoder, ModelConfig
from salsa2.model.provenance import training_data
from salsa2.distill.relevance import CaptionRelevance
from salsa2.training.resume import ResumeState, code_digest, config_key
from salsa2.utils.digest import file_digest
from salsa2.distill.targets import TargetBlocks, TeacherTargets
from salsa2.features.text_cache import TextFeatureStore, text_store
from salsa2.training.loop import FitResult, fit


def model_config(params: Params, encoder: str) -> ModelConfig:
    enc = params.audio_encoder(encoder)
    text_kwargs = {"max_length": params.text.max_length, "trainable_layers": params.text.trainable_layers}
    if params.text.pooling:
        text_kwargs["pooling"] = params.text.pooling
    if params.text.dropout is not None:
        text_kwargs["dropout"] = params.text.dropout
    return ModelConfig(
        audio_arch=enc.arch,
        frontend=params.frontend(enc.frontend),
        text_model=params.text.model,
        embed_dim=params.embed_dim,
        audio_kwargs=dict(enc.kwargs),
        text_kwargs=text_kwargs,
        pooling=params.pooling,
        pooling_kwargs=dict(params.tap) if params.pooling == "tap" else {},
    )


def _splits(params: Params, data_dir, features_dir, frontend: FrontendConfig) -> tuple[RetrievalData, RetrievalData]:
    load = lambda split: load_split(data_dir, split, features_dir, frontend, params.text.normalize)  # noqa: E731
    return load("train"), load("val")


def _checkpointer(params: Params, stage: str, encoder: str, train: RetrievalData,
                  inputs: tuple = ()) -> ResumeState | None:
    """Resume state of this run, keyed by what defines it (``salsa2.training.resume``): every param, the data's size,
    the
    contents of ``inputs`` (stage 2: its stage-1 model and targets) and the code, not where it writes, so a
    queued or ``--temp`` copy of the same run resumes it and a run of edited code starts afresh."""
    cfg = getattr(params, stage)
    if not cfg.resume:
        return None
    digests = [file_digest(p) for p in inputs if Path(p).exists()]
    key = config_key(dataclasses.asdict(params), stage, encoder, len(train.audio_ids), len(train.caption_ids),
                     digests, code_digest())
    return ResumeState(f"{stage}-{encoder}", key)


def _finish(checkpointer: ResumeState | None, out_dir, model: DualEncoder, info: dict) -> None:
    """Rank 0 writes the model, then drops the resume state (the run is complete)."""
    if not current().is_main:
        return
    save_checkpoint(out_dir, model, info)
    if checkpointer is not None:
        checkpointer.clear()


def supervised_loss(params: Params):
    return LOSSES.build(params.loss, **params.loss_kwargs(params.loss))


def caption_relevance(params: Params, train: RetrievalData, text_features: str | Path | None) -> CaptionRelevance:
    """Xie et al. 2024 relevances of the training captions, from the cached Sentence-BERT (frozen text) features."""
    if text_features is None:
        raise ValueError("ListNet relevances need the cached caption embeddings (stage text_features)")
    store = TextFeatureStore(text_features)
    reduce = params.loss_kwargs("listnet").get("reduce", "max")
    return CaptionRelevance(store.lookup(train.caption_ids), train.caption_audio, reduce)


def training_targets(params: Params, train: RetrievalData, text_features, *, relevance: bool,
                     ensemble: str | Path | None = None) -> TargetBlocks | None:
    """The per-batch target blocks the losses read: ``relevance`` (ListNet) and/or ``ensemble`` (C-hat)."""
    providers: dict = {}
    if relevance:
        providers["relevance"] = caption_relevance(params, train, text_features)
    if ensemble is not None:
        providers["ensemble"] = TeacherTargets(ensemble, train.audio_ids, train.caption_ids)
    return TargetBlocks(providers) if providers else None


def train_stage1(params: Params, encoder: str, data_dir, features_dir, text_features, out_dir,
                 on_epoch: Callable[[int, dict], None] | None = None) -> FitResult:
    """Stage 1: a dual encoder trained with the supervised loss (NT-Xent or sigmoid)."""
    cfg = model_config(params, encoder)
    train, val = _splits(params, data_dir, features_dir, cfg.frontend)
    torch.manual_seed(params.seed)  # the initial weights depend on the seed alone, not on what ran before
    model = DualEncoder(cfg)
    store = text_store(params, text_features)
    enc = params.audio_encoder(encoder)
    targets = training_targets(params, train, text_features, relevance=params.loss == "listnet")
    ckpt = _checkpointer(params, "stage1", encoder, train)
    result = fit(model, supervised_loss(params), train, val, params.stage1, audio_lr=enc.lr, text_lr=params.text.lr,
                 text_features=store, teacher=targets, seed=params.seed, on_epoch=on_epoch,
                 batch_size=enc.batch_size, augment=params.augment, checkpointer=ckpt)
    _finish(ckpt, out_dir, model, {"stage": 1, "encoder": encoder, "loss": params.loss,
                                   "text_normalize": params.text.normalize, "trained_on": training_data(data_dir),
                                   "best_epoch": result.best_epoch, "val": result.best_val})
    return result


def train_stage2(params: Params, encoder: str, data_dir, features_dir, text_features, init_dir, targets_path,
                 out_dir, on_epoch: Callable[[int, dict], None] | None = None) -> FitResult:
    """Stage 2: the stage-1 model fine-tuned on estimated correspondences, lambda L_sup + (1-lambda) L_dist."""
    cfg = model_config(params, encoder)
    train, val = _splits(params, data_dir, features_dir, cfg.frontend)
    model = DualEncoder(cfg)
    init_info = copy_weights(model, init_dir)
    stage2 = params.stage2
    distill = LOSSES.build("distill", **params.loss_kwargs("distill"))
    blend = stage2.relevance_weight if stage2.sup_weight < 1 else 0.0
    if blend > 0:
        distill = BlendedDistill(distill, LOSSES.build("listnet", **params.loss_kwargs("listnet")), blend)
    loss_fn = MixedLoss(supervised_loss(params), distill, stage2.sup_weight)
    needs_relevance = (params.loss == "listnet" and stage2.sup_weight > 0) or blend > 0
    use_ensemble = stage2.sup_weight < 1 and blend < 1
    teacher = training_targets(params, train, text_features, relevance=needs_relevance,
                               ensemble=targets_path if use_ensemble else None)
    store = text_store(params, text_features)
    enc = params.audio_encoder(encoder)
    ckpt = _checkpointer(params, "stage2", encoder, train,
                         (Path(init_dir) / "model.safetensors", targets_path))
    result = fit(model, loss_fn, train, val, stage2, audio_lr=enc.lr * stage2.lr / params.stage1.lr,
                 text_lr=params.text.lr * stage2.lr / params.stage1.lr, text_features=store, teacher=teacher,
                 seed=params.seed + 1, on_epoch=on_epoch, batch_size=enc.batch_size, augment=params.augment,
                 checkpointer=ckpt)
    _finish(ckpt, out_dir, model, {"stage": 2, "encoder": encoder, "loss": params.loss, "sup_weight": stage2.sup_weight,
                                   "text_normalize": params.text.normalize, "trained_on": training_data(data_dir),
                                   "init_trained_on": init_info.get("trained_on"),
                                   "teachers": teacher_members(params, encoder), "relevance_weight": blend,
                                   "best_epoch": result.best_epoch, "val": result.best_val})
    return result
