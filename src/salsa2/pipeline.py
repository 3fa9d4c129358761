"""What each DVC stage does, as plain functions of explicit arguments (the stages/ scripts only parse params)."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from collections.abc import Callable

import pandas as pd
import torch

from salsa2.checkpoint import copy_weights, load_model, save_model
from salsa2.config import Params
from salsa2.data import RetrievalData, load_split
from salsa2.datasets import DATASETS
from salsa2.distributed import current
from salsa2.embed import embed_audio, embed_captions, model_scores, similarity_matrix
from salsa2.encoders import TEXT_ENCODERS
from salsa2.features import build_cache
from salsa2.frontends import FrontendConfig
from salsa2.fsutil import write_json
from salsa2.judgements import read_relevance
from salsa2.losses import LOSSES
from salsa2.losses.distill import BlendedDistill, MixedLoss
from salsa2.metrics import (
    ScoreFn,
    bidirectional_metrics,
    constant_scores,
    mean_scores,
    multi_relevance_metrics,
)
from salsa2.model import DualEncoder, ModelConfig
from salsa2.provenance import training_data
from salsa2.relevance import CaptionRelevance
from salsa2.resume import Checkpointer, config_key
from salsa2.tables import read_tables, write_prepared
from salsa2.targets import TargetBlocks, TeacherTargets, build_targets, save_similarities
from salsa2.text_features import TextFeatureStore, compute_text_features, save_text_features
from salsa2.train import FitResult, fit

log = logging.getLogger(__name__)


# ------------------------------------------------------------------------------------------------ data
def prepare(datasets: list[dict], out_dir: str | Path) -> pd.DataFrame:
    """Prepare every dataset of ``datasets`` ([{name, args}]) into one pair of tables; returns the rejects."""
    audio, captions, rejects = [], [], []
    for entry in datasets:
        prepared = DATASETS.build(entry["name"], **(entry.get("args") or {}))
        audio.append(prepared.audio)
        captions.append(prepared.captions)
        rejects.append(prepared.rejects)
        log.info("%s: %d clips, %d captions, %d rejected", entry["name"], len(prepared.audio),
                 len(prepared.captions), len(prepared.rejects))
    rej = pd.concat(rejects, ignore_index=True)
    write_prepared(out_dir, pd.concat(audio, ignore_index=True), pd.concat(captions, ignore_index=True), rej)
    return rej


def prepare_pretrain(datasets: list[dict], pretrain: list[dict] | None, prepared_dir: str | Path,
                     out_dir: str | Path) -> pd.DataFrame:
    """Stage-1 training data (seed 002 Table 2: pretrain on WavCaps+AudioCaps+Clotho, fine-tune on Clotho).

    ``pretrain`` empty: stage 1 trains on the fine-tuning data, so ``out_dir`` gets a copy of the tables in
    ``prepared_dir`` (the demo's single-dataset set-up)."""
    if pretrain:
        return prepare(pretrain, out_dir)
    audio, captions = read_tables(prepared_dir)
    rej = pd.read_csv(Path(prepared_dir) / "rejects.csv")
    write_prepared(out_dir, audio, captions, rej)
    return rej


def union_audio(data_dirs: str | Path | list) -> pd.DataFrame:
    """The audio tables of one or several prepared folders, each clip once."""
    dirs = [data_dirs] if isinstance(data_dirs, (str, Path)) else list(data_dirs)
    audio = pd.concat([read_tables(d)[0] for d in dirs], ignore_index=True)
    return audio.drop_duplicates("audio_id", keep="first").reset_index(drop=True)


def build_features(data_dir: str | Path | list, frontend: FrontendConfig, out_dir: str | Path, min_duration: float):
    """Log-mel cache of every clip of ``data_dir`` (a prepared folder or a list of them, e.g. fine-tuning +
    pretraining data)."""
    return build_cache(out_dir, union_audio(data_dir), frontend, min_duration=min_duration)


def build_text_features(data_dir: str | Path | list, model: str, max_length: int, normalize: bool | str,
                        pooling: str | None, out_path: str | Path) -> None:
    """Frozen-text features of every caption of ``data_dir`` (one prepared folder or a list; each caption once)."""
    dirs = [data_dir] if isinstance(data_dir, (str, Path)) else list(data_dir)
    caption_ids: list[str] = []
    texts: list[str] = []
    seen: set[str] = set()
    for d in dirs:
        data = load_split(d, ["train", "val", "test"], normalize_text=normalize)
        for cid, text in zip(data.caption_ids, data.texts):
            if cid not in seen:
                seen.add(cid)
                caption_ids.append(cid)
                texts.append(text)
    kwargs = {"max_length": max_length, "trainable_layers": 0, **({"pooling": pooling} if pooling else {})}
    encoder = TEXT_ENCODERS.build(model, **kwargs)
    feats = compute_text_features(encoder, texts)
    save_text_features(out_path, caption_ids, feats, {"model": model, "normalize": normalize, **kwargs})


# -------------------------------------------------------------------------------------------- training
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


def _text_store(params: Params, text_features: str | Path | None) -> TextFeatureStore | None:
    """Cached features are used exactly when the text encoder is frozen."""
    if params.text.trainable_layers != 0 or text_features is None:
        return None
    return TextFeatureStore(text_features)


def _checkpointer(params: Params, stage: str, encoder: str, train: RetrievalData, out_dir,
                  inputs: tuple = ()) -> Checkpointer | None:
    """Resume state of the run that writes ``out_dir``: one slot per output location (so concurrent runs
    elsewhere never touch it), keyed by every param, the data's size and the size and mtime of the files
    in ``inputs`` (stage 2: its stage-1 model and targets)."""
    cfg = getattr(params, stage)
    if not cfg.resume:
        return None
    stats = [(str(p), Path(p).stat().st_size, Path(p).stat().st_mtime_ns) for p in inputs if Path(p).exists()]
    key = config_key(dataclasses.asdict(params), stage, encoder, len(train.audio_ids), len(train.caption_ids), stats)
    slot = config_key(str(Path(out_dir).resolve()))[:12]
    return Checkpointer(f"{stage}-{encoder}-{slot}", key)


def _finish(checkpointer: Checkpointer | None, out_dir, model: DualEncoder, info: dict) -> None:
    """Rank 0 writes the model, then drops the resume state (the run is complete)."""
    if not current().is_main:
        return
    save_model(out_dir, model, info)
    if checkpointer is not None:
        checkpointer.clear()


def supervised_loss(params: Params):
    return LOSSES.build(params.loss, **params.loss_kwargs(params.loss))


def caption_relevance(params: Params, train: RetrievalData, text_features: str | Path | None) -> CaptionRelevance:
    """Seed 001 relevances of the training captions, from the cached Sentence-BERT (frozen text) features."""
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
    store = _text_store(params, text_features)
    enc = params.audio_encoder(encoder)
    targets = training_targets(params, train, text_features, relevance=params.loss == "listnet")
    ckpt = _checkpointer(params, "stage1", encoder, train, out_dir)
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
    store = _text_store(params, text_features)
    enc = params.audio_encoder(encoder)
    ckpt = _checkpointer(params, "stage2", encoder, train, out_dir,
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


# ----------------------------------------------------------------------------- correspondence estimates
def dump_similarities(params: Params, model_dir, data_dir, features_dir, text_features, out_path) -> None:
    """The train-set audio x caption similarity matrix of one stage-1 model, with row/column ids."""
    model, _ = load_model(model_dir)
    data = load_split(data_dir, "train", features_dir, model.frontend, params.text.normalize)
    store = _text_store(params, text_features)
    audio = embed_audio(model, data)
    text = embed_captions(model, data, store)
    sim = similarity_matrix(model, data, store) if model.tap is not None else None
    save_similarities(out_path, data.audio_ids, data.caption_ids, audio, text, similarity=sim)


def teacher_members(params: Params, student: str) -> list[str]:
    """Which stage-1 models estimate the correspondences for ``student`` (``stage2.teachers``)."""
    teachers = params.stage2.teachers
    if teachers == "all":
        return list(params.encoders)
    if teachers == "self":
        return [student]
    members = [teachers] if isinstance(teachers, str) else list(teachers)
    unknown = [m for m in members if m not in params.encoders]
    if unknown:
        raise ValueError(f"stage2.teachers names {unknown}, which are not in encoders {params.encoders}")
    return members


def build_ensemble(params: Params, student: str, sims_dir, out_path) -> list[str]:
    """C-hat for ``student``: the mean of its teachers' similarities (seed 002 sec. 3), stored as
    ``stage2.targets`` says (dense matrix or the members' embeddings; ``salsa2.targets``)."""
    members = teacher_members(params, student)
    kind = build_targets([Path(sims_dir) / f"{m}.npz" for m in members], out_path, members, params.stage2.targets)
    log.info("targets for %s: %s storage, M=%d", student, kind, len(members))
    return members


# ---------------------------------------------------------------------------------------------- evaluation
def evaluate(params: Params, model_dirs: dict[str, Path], data_dir, features: dict[str, Path], text_features,
             split: str = "test", ensembles: dict[str, list[str]] | None = None,
             relevance: tuple[str | Path, str] | None = None, relevance_k: int = 16) -> dict:
    """Metrics of every model and of similarity-averaged ensembles on ``split``.

    ``model_dirs``: name -> checkpoint; ``features``: frontend key -> cache dir; ``ensembles``: name -> list
    of model names whose similarity matrices are averaged (seed 004); ``relevance``: (file, dataset name) of
    multi-relevance judgements (DCASE 2025 task 6), scored as ``t2a_multi/mAP@16`` next to the usual metrics.
    """
    store = _text_store(params, text_features)
    scores: dict[str, ScoreFn] = {}
    results: dict[str, dict] = {}
    reference: RetrievalData | None = None
    for name, path in model_dirs.items():
        model, info = load_model(path)
        data = load_split(data_dir, split, features[model.frontend.key()], model.frontend, params.text.normalize)
        if reference is None:
            reference = data
        elif data.audio_ids != reference.audio_ids or data.caption_ids != reference.caption_ids:
            raise ValueError(f"{name}: its {split} clips differ from the other models' (different rejects?)")
        scores[name] = model_scores(model, data, store)
        results[name] = {**bidirectional_metrics(scores[name], data.audio_ids, data.caption_audio_ids),
                         "best_epoch": info.get("best_epoch", -1)}
        log.info("%s: t2a mAP@10 %.4f", name, results[name]["t2a/mAP@10"])
    assert reference is not None
    for ens_name, members in (ensembles or {}).items():
        scores[ens_name] = mean_scores([scores[m] for m in members])
        results[ens_name] = bidirectional_metrics(scores[ens_name], reference.audio_ids, reference.caption_audio_ids)
    n_audio = len(reference.audio_ids)
    results["chance"] = chance_metrics(n_audio, reference)
    if relevance is not None:
        queries = read_relevance(relevance[0], relevance[1], data_dir, reference.caption_ids, reference.audio_ids)
        scores["chance"] = constant_scores(n_audio, len(reference.caption_ids))
        everything = slice(None)
        for name, metrics in results.items():  # the judgements' queries need whole rows: one matrix per model
            metrics.update(multi_relevance_metrics(scores[name](everything, everything), queries, k=relevance_k))
    return results


def chance_metrics(n_audio: int, data: RetrievalData) -> dict[str, float]:
    """Expected metrics of a random ranking (a constant similarity, never held as a matrix)."""
    return bidirectional_metrics(constant_scores(n_audio, len(data.caption_ids)), data.audio_ids,
                                 data.caption_audio_ids)


def write_metrics(path: str | Path, results: dict) -> None:
    """Nested JSON ``{model: {t2a: {mAP@10: ...}, a2t: {...}, best_epoch}}`` for ``dvc metrics show/diff``."""
    nested: dict = {}
    for name, metrics in results.items():
        entry: dict = {}
        for key, value in metrics.items():
            head, _, tail = key.partition("/")
            if tail:
                entry.setdefault(head, {})[tail] = round(float(value), 5)
            else:
                entry[head] = value
        nested[name] = entry
    write_json(path, nested)
