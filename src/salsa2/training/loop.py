"""The training loop shared by stage 1 and stage 2: Adam, warm-up + cosine, validation mAP@10 picks the epoch.

``fit`` = ``start_run`` (everything built once: generators, augmentation, optimizer, precision, resumed state, DDP
wrapping) + per epoch ``run_epoch`` (``train_epoch``: the steps, ``train_step`` each; then validation) and
``BestEpoch`` (keeps the best validated epoch's weights and restores them at the end).
"""

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

from salsa2.training.amp import MixedPrecision
from salsa2.training.augment import (
    AugmentParams,
    MaskedViewBank,
    draw_mixing,
    masked_caption_embeddings,
    mix_logmel,
    mixco_loss,
)
from salsa2.config.params import TrainParams
from salsa2.features.splits import Batch, RetrievalData, crop_frames, num_batches, pad_multiple_of
from salsa2.training.distributed import (DistContext, check_batch_sizes, current, gather_rows, no_sync, prepare_model,
                                         shard, shard_counts, wrap)
from salsa2.evaluation.embed import model_scores
from salsa2.training.loader import LoadedBatch, Prefetcher, epoch_batches, to_device
from salsa2.training.losses import total_loss
from salsa2.evaluation.metrics import bidirectional_metrics
from salsa2.model.dual_encoder import AudioSide, DualEncoder
from salsa2.training.resume import ResumeState
from salsa2.distill.targets import TargetProvider
from salsa2.features.text_cache import TextFeatureStore

log = logging.getLogger(__name__)


def lr_factor(progress: float, warmup: float, total: float, end_factor: float, cosine_end: float = 0.0) -> float:
    """Schedule as a pure function of fractional epoch: linear warm-up to 1, cosine to ``end_factor`` at epoch
    ``cosine_end`` (0: ``total``), then held at ``end_factor``.

    The authors' ``update_lr`` (OptimusPrimus/salsa ``ex_dcase24.py``, warmup_length = rampdown_start = 1,
    rampdown_stop = 15, max_epochs = 20), times the base rate: lr * e / w during warm-up, then
    lr_min + (lr - lr_min) * (1 + cos(pi (e - w) / (stop - w))) / 2 until ``stop``, then lr_min.
    """
    if warmup > 0 and progress < warmup:
        return progress / warmup
    stop = cosine_end if cosine_end > 0 else total
    if progress >= stop:
        return end_factor
    span = max(stop - warmup, 1e-12)
    t = min(max((progress - warmup) / span, 0.0), 1.0)
    return end_factor + (1 - end_factor) * 0.5 * (1 + math.cos(math.pi * t))


def param_groups(model: DualEncoder, loss_fn: nn.Module, audio_lr: float, text_lr: float, head_lr: float,
                 loss_lr: float) -> list[dict]:
    """One Adam group per module with its own rate (Tymofieiev 2025: encoders and t, b have their own rates).

    The heads group holds the projections and the TAP pooling (Tymofieiev 2025, sec. 3.6), at the heads' rate.
    """
    groups = [
        {"name": "audio_encoder", "params": list(model.audio_encoder.parameters()), "lr": audio_lr},
        {"name": "text_encoder", "params": [p for p in model.text_encoder.parameters() if p.requires_grad],
         "lr": text_lr},
        {"name": "heads", "params": [p for m in (model.audio_proj, model.text_proj, model.tap) if m is not None
                                     for p in m.parameters() if p.requires_grad], "lr": head_lr},
        {"name": "loss", "params": list(loss_fn.parameters()), "lr": loss_lr},
    ]
    for g in groups:
        g["base_lr"] = g["lr"]
    return [g for g in groups if g["params"]]


def validates(epoch: int, epochs: int, every: int) -> bool:
    """Whether ``epoch`` (0-based) is validated: every ``every``-th epoch and always the last one."""
    return (epoch + 1) % every == 0 or epoch + 1 == epochs


METRIC = "t2a/mAP@10"  # validation metric that picks the epoch


@dataclass
class FitResult:
    """The best validated epoch (-1: none yet), its val metrics and every epoch's record."""

    best_epoch: int
    best_val: dict
    history: list[dict] = field(default_factory=list)


def evaluate_model(model: DualEncoder, data: RetrievalData, text_features: TextFeatureStore | None) -> dict:
    return bidirectional_metrics(model_scores(model, data, text_features), data.audio_ids, data.caption_audio_ids)


def _without_frozen_text(model: nn.Module, state: dict) -> dict:
    """``state`` less a frozen text encoder's weights (rebuilt from its source; never in resume files)."""
    if getattr(model, "text_encoder", None) is not None and model.text_encoder.frozen:
        state = {k: v for k, v in state.items() if not k.startswith("text_encoder.")}
    return state


def trained_state(model: nn.Module) -> dict:
    """The model's state without a frozen text encoder."""
    return _without_frozen_text(model, model.state_dict())


def load_trained_state(model: nn.Module, state: dict) -> None:
    """Inverse of ``trained_state``: every key but the frozen text encoder's must match (an older state that
    holds its weights loads too; they are the pretrained ones the encoder is rebuilt from)."""
    missing, unexpected = model.load_state_dict(_without_frozen_text(model, state), strict=False)
    missing = [k for k in missing if not k.startswith("text_encoder.")]
    if missing or unexpected:
        raise RuntimeError(f"saved training state does not match the model: missing {missing[:5]}, "
                           f"unexpected {unexpected[:5]}")


@dataclass
class BestEpoch:
    """Every epoch's record and, of the validated epochs, the one with the highest val t2a mAP@10 and its weights.

    ``weights``: the best epoch's trained state (None until an epoch is validated); ties keep the earlier epoch.
    """

    result: FitResult = field(default_factory=lambda: FitResult(best_epoch=-1, best_val={METRIC: -1.0}))
    weights: dict | None = None

    def add(self, model: nn.Module, record: dict, val_metrics: dict | None) -> None:
        """Append an epoch's ``record``; keep a copy of ``model``'s weights when ``val_metrics`` is the best yet."""
        self.result.history.append(record)
        if val_metrics is not None and val_metrics[METRIC] > self.result.best_val[METRIC]:
            self.result.best_epoch, self.result.best_val = record["epoch"], val_metrics
            self.weights = copy.deepcopy(trained_state(model))

    def restore(self, model: nn.Module) -> None:
        """Load the best epoch's weights into ``model`` (unchanged when no epoch was validated)."""
        if self.weights is not None:
            load_trained_state(model, self.weights)


@dataclass
class TrainState:
    """What a resumed run needs beyond the model: the next epoch, the best so far, the RNGs (salsa2.training.resume)."""

    epoch: int
    best: BestEpoch

    def to_dict(self, model: nn.Module, loss_fn: nn.Module, optimizer, amp: MixedPrecision,
                rng: np.random.Generator, aug_rng: np.random.Generator | None = None,
                aug_gen: torch.Generator | None = None) -> dict:
        best = self.best.result
        return {"epoch": self.epoch, "best_epoch": best.best_epoch, "best_val": best.best_val,
                "history": best.history, "best_state": self.best.weights, "model": trained_state(model),
                "loss": loss_fn.state_dict(), "optimizer": optimizer.state_dict(),
                "scaler": amp.scaler.state_dict(), "numpy_rng": rng.bit_generator.state,
                "torch_rng": torch.get_rng_state(), "aug_rng": aug_rng.bit_generator.state if aug_rng else None,
                "aug_gen": aug_gen.get_state() if aug_gen is not None else None,
                "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}

    @classmethod
    def restore(cls, saved: dict, model: nn.Module, loss_fn: nn.Module, optimizer, amp: MixedPrecision,
                rng: np.random.Generator, aug_rng: np.random.Generator | None = None,
                aug_gen: torch.Generator | None = None) -> TrainState:
        load_trained_state(model, saved["model"])
        loss_fn.load_state_dict(saved["loss"])
        optimizer.load_state_dict(saved["optimizer"])
        amp.scaler.load_state_dict(saved["scaler"])
        rng.bit_generator.state = saved["numpy_rng"]
        torch.set_rng_state(saved["torch_rng"])
        if aug_rng is not None and saved.get("aug_rng") is not None:  # Mixco draws (Munakata et al. 2024, eq. 8)
            aug_rng.bit_generator.state = saved["aug_rng"]
        if aug_gen is not None and saved.get("aug_gen") is not None:  # text-mask draws
            aug_gen.set_state(saved["aug_gen"])
        if saved.get("cuda_rng") is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(saved["cuda_rng"])
        best = FitResult(saved["best_epoch"], saved["best_val"], list(saved["history"]))
        return cls(saved["epoch"], BestEpoch(best, saved["best_state"]))


def batch_text(model: DualEncoder, data: RetrievalData, captions: np.ndarray, text_features: TextFeatureStore | None,
               augment: AugmentParams, generator: torch.Generator, views: MaskedViewBank | None = None,
               rng: np.random.Generator | None = None) -> torch.Tensor:
    """(T, D) embeddings of a batch's captions: cached features, the live encoder, or masked tokens
    (Munakata et al. 2024)."""
    if views is not None:
        assert rng is not None
        return model.encode_text_features(views.lookup(captions, rng).to(model.text_proj.weight.device))
    if augment.text_mask > 0:
        return masked_caption_embeddings(model, [data.texts[c] for c in captions], augment.text_mask, generator)
    if text_features is not None:
        feats = torch.from_numpy(text_features.lookup([data.caption_ids[c] for c in captions]))
        return model.encode_text_features(feats.to(model.text_proj.weight.device))
    return model.encode_text([data.texts[c] for c in captions])


def global_similarity(model: DualEncoder, side: AudioSide, text: torch.Tensor, ctx: DistContext,
                      counts: tuple[int, ...]) -> torch.Tensor:
    """(A, T) similarity of the global batch from this rank's clips and all captions ``text`` (T, D).

    Mean pooling gathers the clip embeddings; TAP (caption-dependent) computes this rank's rows against
    every caption and gathers the rows (``salsa2.training.distributed.gather_rows``; identity in one process).
    """
    if side.embedding is not None:
        return model.similarity(gather_rows(side.embedding.float(), ctx, counts), text)
    assert side.tokens is not None and side.weights is not None
    local = AudioSide(tokens=side.tokens.float(), weights=side.weights.float())
    return gather_rows(model.similarity(local, text), ctx, counts)


def compile_encoders(model: DualEncoder, backend: str) -> None:
    """``torch.compile`` the audio encoder and a trainable text transformer in place (state_dict keys unchanged)."""
    if backend == "none":
        return
    model.audio_encoder.compile(backend=backend)
    inner = getattr(model.text_encoder, "model", None)
    if isinstance(inner, nn.Module) and not model.text_encoder.frozen:
        inner.compile(backend=backend)


@dataclass(frozen=True)
class RunInputs:
    """What every step's loss terms read besides its batch; built once per run (``start_run``)."""

    ctx: DistContext
    amp: MixedPrecision
    data: RetrievalData
    text_features: TextFeatureStore | None
    augment: AugmentParams
    aug_gen: torch.Generator
    views: MaskedViewBank | None
    aug_rng: np.random.Generator
    teacher: TargetProvider | None


@dataclass
class StepInputs:
    """One global batch on this rank: its log-mels and lengths on the device and this rank's shares ``rows`` and
    ``cols`` of its clips and captions."""

    batch: Batch
    mel: torch.Tensor
    lengths: torch.Tensor
    rows: slice
    cols: slice
    run: RunInputs

    @classmethod
    def load(cls, loaded: LoadedBatch, run: RunInputs) -> StepInputs:
        """Every process holds the whole global batch (same RNG draws) and encodes its own share."""
        dev, batch = run.ctx.device, loaded.batch
        mel, lengths = to_device(loaded.mel, dev), to_device(loaded.lengths, dev)
        return cls(batch, mel, lengths, shard(len(batch.audio), run.ctx), shard(len(batch.captions), run.ctx), run)

    def terms(self, m: DualEncoder, loss_fn: nn.Module) -> dict[str, torch.Tensor]:
        """The step's loss terms; runs inside the (DDP-wrapped) ``TrainStep`` forward."""
        batch, run, dev = self.batch, self.run, self.mel.device
        ctx, amp, augment = run.ctx, run.amp, run.augment
        counts = shard_counts(len(batch.audio), ctx)
        positives = batch.positives.to(dev)
        with amp.autocast():
            side = m.encode_audio_side(self.mel[self.rows], self.lengths[self.rows])
            text = batch_text(m, run.data, batch.captions[self.cols], run.text_features, augment, run.aug_gen,
                              run.views, run.aug_rng)
        text = gather_rows(text.float(), ctx, shard_counts(len(batch.captions), ctx))
        sim = global_similarity(m, side, text, ctx, counts)
        targets = _to_device(run.teacher.block(batch.audio, batch.captions), dev) if run.teacher is not None else None
        terms = loss_fn(sim, positives, targets)
        if augment.mixco:  # Munakata et al. 2024, eqs. 8-12: every rank mixes the whole batch, encodes its share
            partner, lam = draw_mixing(len(batch.audio), run.aug_rng)
            mixed_mel, mixed_len = mix_logmel(self.mel, self.lengths, partner, lam, m.frontend.log_offset)
            with amp.autocast():
                mixed = m.encode_audio_side(mixed_mel[self.rows], mixed_len[self.rows])
            terms["mixco_loss"] = mixco_loss(global_similarity(m, mixed, text, ctx, counts), positives, partner, lam,
                                             augment.mixco_tau)
        return terms


def _to_device(targets, device: torch.device):
    """A target block, or a dict of named blocks (salsa2.distill.targets.TargetBlocks), on ``device``."""
    if isinstance(targets, dict):
        return {k: v.to(device) for k, v in targets.items()}
    return targets.to(device)


@dataclass
class TrainingRun:
    """What a run builds once (``start_run``): the model and loss on the device, the per-run step inputs, the
    optimizer, the (DDP-wrapped) step, the batch generator and the state to continue from."""

    model: DualEncoder
    loss_fn: nn.Module
    cfg: TrainParams
    inputs: RunInputs
    rng: np.random.Generator  # batch order and crops
    optimizer: torch.optim.Optimizer
    runner: nn.Module
    state: TrainState
    batch_size: int
    steps: int  # batches per epoch
    max_frames: int
    pad_to: int
    checkpointer: ResumeState | None = None

    @property
    def ctx(self) -> DistContext:
        return self.inputs.ctx

    @property
    def amp(self) -> MixedPrecision:
        return self.inputs.amp

    def train_mode(self) -> None:
        """Dropout and batch statistics on, except in a frozen text encoder."""
        self.model.train()
        if self.model.text_encoder.frozen:
            self.model.text_encoder.eval()
        self.loss_fn.train()

    def batches(self) -> Prefetcher[LoadedBatch]:
        """One epoch's batches, drawn from ``rng``, collated ahead in a thread (``salsa2.training.loader``)."""
        source = epoch_batches(self.inputs.data, self.batch_size, self.cfg.layout, self.rng, self.max_frames,
                               self.pad_to)
        return Prefetcher(source, self.cfg.prefetch, pin=self.ctx.device.type == "cuda")

    def set_lr(self, progress: float) -> None:
        """Every group's rate at fractional epoch ``progress``: its base rate times ``lr_factor``."""
        cfg = self.cfg
        factor = lr_factor(progress, cfg.warmup_epochs, cfg.epochs, cfg.lr_min / cfg.lr, cfg.cosine_epochs)
        for g in self.optimizer.param_groups:
            g["lr"] = g["base_lr"] * factor

    def save(self) -> None:
        """Rank 0 writes the resume state (``salsa2.training.resume``), when the run has one."""
        if self.checkpointer is not None and self.ctx.is_main:
            inputs = self.inputs
            self.checkpointer.save(self.state.to_dict(self.model, self.loss_fn, self.optimizer, self.amp, self.rng,
                                                      inputs.aug_rng, inputs.aug_gen))


def _masked_views(model: DualEncoder, train: RetrievalData, augment: AugmentParams,
                  generator: torch.Generator) -> MaskedViewBank | None:
    """Masked views of the training captions drawn once (``text_mask_views`` > 0), else None."""
    if augment.text_mask > 0 and augment.text_mask_views > 0:
        return MaskedViewBank(model.text_encoder, train.texts, augment.text_mask, augment.text_mask_views, generator)
    return None


def start_run(
    model: DualEncoder,
    loss_fn: nn.Module,
    train: RetrievalData,
    cfg: TrainParams,
    *,
    audio_lr: float,
    text_lr: float,
    text_features: TextFeatureStore | None = None,
    teacher: TargetProvider | None = None,
    seed: int = 0,
    batch_size: int | None = None,
    checkpointer: ResumeState | None = None,
    dist: DistContext | None = None,
    augment: AugmentParams | None = None,
) -> TrainingRun:
    """Seed the RNGs, place (and compile) the model, build augmentation, optimizer and precision, continue the
    state ``checkpointer`` holds and wrap the step for DDP (arguments as in ``fit``)."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    ctx = dist or current(cfg.device)
    model = prepare_model(model, ctx)
    loss_fn.to(ctx.device)
    compile_encoders(model, cfg.compile)
    augment = augment or AugmentParams()
    aug_rng = np.random.default_rng([seed, 4])  # augmentation draws leave the batch order untouched
    aug_gen = torch.Generator().manual_seed(seed + 4)
    views = _masked_views(model, train, augment, aug_gen)
    batch_size = batch_size or cfg.batch_size
    check_batch_sizes(len(train.audio_ids) if cfg.layout == "clips" else len(train.caption_ids), batch_size, ctx)
    groups = param_groups(model, loss_fn, audio_lr, text_lr if not model.text_encoder.frozen else 0.0, cfg.lr,
                          cfg.loss_lr)
    optimizer = torch.optim.Adam(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
    amp = MixedPrecision(cfg.precision, ctx.device)
    state = TrainState(0, BestEpoch())
    saved = checkpointer.load() if checkpointer is not None else None
    if saved is not None:
        state = TrainState.restore(saved, model, loss_fn, optimizer, amp, rng, aug_rng, aug_gen)
    runner = wrap(model, loss_fn, ctx, find_unused_parameters=cfg.ddp_find_unused, static_graph=cfg.ddp_static_graph)
    return TrainingRun(
        model, loss_fn, cfg, RunInputs(ctx, amp, train, text_features, augment, aug_gen, views, aug_rng, teacher),
        rng, optimizer, runner, state, batch_size, steps=num_batches(train, batch_size, cfg.layout),
        max_frames=crop_frames(model.frontend, cfg.max_seconds),
        pad_to=pad_multiple_of(model.audio_encoder), checkpointer=checkpointer)


def _no_mark(phase: str) -> None:
    pass


def train_step(run: TrainingRun, inputs: StepInputs, sync: bool, share: int,
               mark: Callable[[str], None] = _no_mark) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Forward and backward of one batch, its loss divided by ``share`` (the batches of its accumulation group);
    with ``sync`` the gradients are all-reduced (DDP) and the optimizer steps. The step's terms and loss.

    ``mark(phase)`` is called as forward, backward and optimizer end (``benchmarks/bench_train.py`` times them).
    """
    with no_sync(run.runner, sync):  # DDP all-reduces gradients in the backward of a group's last batch
        terms = run.runner(inputs.terms)
        loss = total_loss(terms)
        mark("forward")
        run.amp.backward(loss / share)
        mark("backward")
    if sync:
        run.amp.step(run.optimizer, run.model.parameters(), run.cfg.grad_clip)
        run.optimizer.zero_grad(set_to_none=True)
        mark("optimizer")
    return terms, loss


def train_epoch(run: TrainingRun, epoch: int) -> dict[str, float]:
    """One pass over the training batches, the optimizer stepping every ``accumulate`` batches (and after the
    last); the epoch's mean loss terms as ``train/<term>``."""
    run.train_mode()
    accumulate, steps = run.cfg.accumulate, run.steps
    sums: dict[str, float] = {}
    bar = tqdm(run.batches(), total=steps, desc=f"epoch {epoch}", unit="batch", leave=False,
               disable=not run.ctx.is_main)
    for step, loaded in enumerate(bar):
        run.set_lr(epoch + step / steps)
        group_start = step - step % accumulate
        sync = step + 1 == steps or (step + 1) % accumulate == 0
        terms, loss = train_step(run, StepInputs.load(loaded, run.inputs), sync, min(accumulate, steps - group_start))
        for k, v in terms.items():
            sums[k] = sums.get(k, 0.0) + float(v.detach())
        sums["loss"] = sums.get("loss", 0.0) + float(loss.detach())
        bar.set_postfix(loss=f"{float(loss.detach()):.3f}")
    return {f"train/{k}": v / steps for k, v in sums.items()}


def run_epoch(run: TrainingRun, epoch: int, val: RetrievalData) -> tuple[dict, dict | None]:
    """Train one epoch and validate it when due (``validate_every``): the epoch's record and val metrics (None
    when not validated)."""
    start = time.time()
    train_stats = train_epoch(run, epoch)
    cfg = run.cfg
    validate = validates(epoch, cfg.epochs, cfg.validate_every)
    val_metrics = evaluate_model(run.model, val, run.inputs.text_features) if validate else None
    record = {"epoch": epoch, **train_stats, **{f"val/{k}": v for k, v in (val_metrics or {}).items()},
              "lr": run.optimizer.param_groups[0]["lr"], "seconds": time.time() - start}
    log.info("epoch %d loss %.4f val t2a mAP@10 %s (%.1f s)", epoch, train_stats["train/loss"],
             f"{val_metrics[METRIC]:.4f}" if val_metrics is not None else "-", record["seconds"])
    return record, val_metrics


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
    checkpointer: ResumeState | None = None,
    dist: DistContext | None = None,
    augment: AugmentParams | None = None,
) -> FitResult:
    """Train ``model`` in place; at the end it holds the weights of the epoch with the best val t2a mAP@10.

    ``checkpointer``: save the state after every epoch and continue from a saved one (``salsa2.training.resume``).
    ``dist``: this process's share of a multi-process job (default: from torchrun's environment, else one
    process); every process sees the same global batches and encodes its shard (``salsa2.training.distributed``).
    """
    try:
        run = start_run(model, loss_fn, train, cfg, audio_lr=audio_lr, text_lr=text_lr, text_features=text_features,
                        teacher=teacher, seed=seed, batch_size=batch_size, checkpointer=checkpointer, dist=dist,
                        augment=augment)
        best = run.state.best
        if on_epoch is not None and run.ctx.is_main:
            for record in best.result.history:  # the logger's earlier epochs were deleted with the stage's outs
                on_epoch(record["epoch"], record)
        for epoch in range(run.state.epoch, cfg.epochs):
            record, val_metrics = run_epoch(run, epoch, val)
            best.add(run.model, record, val_metrics)
            run.state.epoch = epoch + 1
            run.save()
            if on_epoch is not None and run.ctx.is_main:
                on_epoch(epoch, record)
        best.restore(run.model)
        return best.result
    except BaseException:  # interrupted in process (Ctrl-C in a notebook): the state stays for a re-run,
        if checkpointer is not None:  # and so must the lock, which only marks a live run
            checkpointer.release()
        raise
