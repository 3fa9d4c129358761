"""Stage evaluate: test metrics of every model and of similarity-averaged ensembles (Munakata et al. 2024), the optional
multi-relevance mAP@16 (DCASE 2025 task 6) and the metrics files DVC reads."""

from __future__ import annotations

import logging
from pathlib import Path

from salsa2.model.checkpoint import load_checkpoint
from salsa2.config.params import Params
from salsa2.features.splits import RetrievalData, load_split
from salsa2.evaluation.embed import model_scores
from salsa2.utils.fsutil import write_json
from salsa2.evaluation.judgements import read_relevance
from salsa2.evaluation.metrics import (
    ScoreFn,
    bidirectional_metrics,
    constant_scores,
    mean_scores,
    multi_relevance_metrics,
)
from salsa2.features.caches import NoFeatureCache, cache_for
from salsa2.features.text_cache import TextFeatureStore, text_store
from salsa2.model.locate import RELEASED_PREFIX, checkpoint_frontend, released_path

log = logging.getLogger(__name__)


def evaluate(params: Params, model_dirs: dict[str, Path], data_dir, features: dict[str, Path], text_features,
             split: str = "test", ensembles: dict[str, list[str]] | None = None,
             relevance: tuple[str | Path, str] | None = None, relevance_k: int = 16) -> dict:
    """Metrics of every model and of similarity-averaged ensembles on ``split``.

    ``model_dirs``: name -> checkpoint; ``features``: frontend key -> cache dir; ``ensembles``: name -> list
    of model names whose similarity matrices are averaged (Munakata et al. 2024); ``relevance``: (file, dataset name) of
    multi-relevance judgements (DCASE 2025 task 6), scored as ``t2a_multi/mAP@16`` next to the usual metrics.
    """
    return evaluate_models(model_dirs, data_dir, features, text_store(params, text_features), split, ensembles,
                           relevance, relevance_k, default_normalize=params.text.normalize)


def evaluate_models(model_dirs: dict[str, Path], data_dir, features: dict[str, Path],
                    store: TextFeatureStore | None = None, split: str = "test",
                    ensembles: dict[str, list[str]] | None = None,
                    relevance: tuple[str | Path, str] | None = None, relevance_k: int = 16,
                    normalize_text: bool | str | None = None, default_normalize: bool | str = True) -> dict:
    """:func:`evaluate` without params: each model reads the cache of its own frontend (``features``: frontend
    key -> cache dir) and normalises captions as its config.json says (``text_normalize``, else
    ``default_normalize``; ``normalize_text`` overrides both), so trained and released models are scored on the
    same clips and captions. ``store``: cached frozen-text features, used for models whose text encoder is
    frozen."""
    scores: dict[str, ScoreFn] = {}
    results: dict[str, dict] = {}
    reference: RetrievalData | None = None
    for name, path in model_dirs.items():
        cache = cache_for(features, checkpoint_frontend(path), f"{name} ({path})")  # before loading the weights
        model, info = load_checkpoint(path)
        mode = normalize_text if normalize_text is not None else info.get("text_normalize", default_normalize)
        data = load_split(data_dir, split, cache, model.frontend, mode)
        if not data.audio_ids:
            raise NoFeatureCache(f"{name}: no {split} clips of {data_dir} in its log-mel cache; pick another "
                                 "split or build the cache from these tables")
        if reference is None:
            reference = data
        elif data.audio_ids != reference.audio_ids or data.caption_ids != reference.caption_ids:
            raise ValueError(f"{name}: its {split} clips differ from the other models' (different rejects?)")
        scores[name] = model_scores(model, data, store)
        results[name] = {**bidirectional_metrics(scores[name], data.audio_ids, data.caption_audio_ids),
                         "best_epoch": info.get("best_epoch", -1)}
        log.info("%s: t2a mAP@10 %.4f", name, results[name]["t2a/mAP@10"])
    assert reference is not None, "no models to evaluate"
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


def released_models(released_dir: str | Path, names) -> dict[str, Path]:
    """``released-<name>`` -> checkpoint folder of each released model ``names`` lists (params ``released``),
    each checked to be imported (stage ``release@<name>``)."""
    return {f"{RELEASED_PREFIX}{name}": released_path(name, released_dir) for name in names}


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


HEADLINE = ("t2a/mAP@10", "t2a/R@1", "t2a/R@10")


def write_headline(path: str | Path, results: dict) -> None:
    """The few numbers `dvc exp show` / `dvc metrics diff` show: ``{model: {mAP@10, R@1, R@10}}`` (test, t2a),
    every model and ensemble (not chance)."""
    write_json(path, {name: {key.split("/")[1]: round(float(metrics[key]), 5) for key in HEADLINE}
                      for name, metrics in results.items() if name != "chance"})
