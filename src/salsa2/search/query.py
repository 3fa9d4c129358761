"""Exact top-k search of an index by text (several paraphrases averaged) or by example audio.

- Similarity is the cosine ``C_ij = phi_a(a_i) . phi_c(c_j)`` of L2-normalised embeddings (Primus et al. 2024, sec. 2).
- Paraphrases of one query: each is embedded, the embeddings are averaged and re-normalised, and the mean
  is scored (Munakata et al. 2024, sec. 4.3, inference-time query augmentation).
- An index with several models is searched as an ensemble: the mean of the models' cosine similarities
  (Munakata et al. 2024, sec. 5, the ensemble of Table 4; also how
  Primus et al. 2024, sec. 3 combines its stage-1 models).
- ``--audio FILE`` scores the index with the audio embedding of FILE (audio-to-audio similarity in the
  same space); with a caption set (``captions``: a text/CSV/Parquet file or a list) it also ranks the
  captions for FILE (audio-to-text retrieval). The caption set is given at search time because a
  checkpoint does not carry its training captions; the demo's ``captions.csv`` works as it is.

Search is an exact blocked matrix product (``top_k``), ties broken by the lower row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from salsa2.utils.errors import UserError
from salsa2.model.checkpoint import CheckpointError
from salsa2.search.index import Index, IndexFileError, read_index
from salsa2.search.inference import SearchModel, embed_audio, embed_text, load_model
from salsa2.model.provenance import demo_only_warning
from salsa2.data.text_norm import normalize_for_model

BLOCK = 65536  # index rows scored per matrix product: (Q, BLOCK) float32 scores at a time


def top_k(queries: Sequence[np.ndarray] | np.ndarray, items: Sequence[np.ndarray] | np.ndarray, k: int,
          block: int = BLOCK) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k rows of ``mean_m(queries[m] @ items[m].T)``.

    Args:
        queries: (Q, D) or one (Q, D_m) array per model.
        items: (N, D) or one (N, D_m) array per model, aligned with ``queries``.
        k: results per query (at most N).
        block: rows of ``items`` scored at once.

    Returns:
        scores (Q, min(k, N)) descending and row indices (Q, min(k, N)); equal scores keep the lower row first.
    """
    qs = [queries] if isinstance(queries, np.ndarray) else list(queries)
    xs = [items] if isinstance(items, np.ndarray) else list(items)
    if len(qs) != len(xs) or not qs:
        raise ValueError(f"{len(qs)} query arrays for {len(xs)} item arrays")
    n, nq = xs[0].shape[0], qs[0].shape[0]
    k = min(int(k), n)
    best_s = np.zeros((nq, 0), np.float32)
    best_i = np.zeros((nq, 0), np.int64)
    if k <= 0 or nq == 0:
        return best_s, best_i
    for s in range(0, n, block):
        e = min(s + block, n)
        scores = sum((x[s:e] @ q.T).T for q, x in zip(qs, xs))
        scores = (scores / len(qs)).astype(np.float32)
        scores[~np.isfinite(scores)] = -np.inf  # a NaN row (an index from before non-finite checks) ranks last
        cand_s, cand_i = [], []
        for row in scores:
            if e - s > k:  # keep every row scoring at least the block's k-th best: exact under ties
                kth = np.partition(row, e - s - k)[e - s - k]
                keep = np.flatnonzero(row >= kth)
            else:
                keep = np.arange(e - s)
            cand_s.append(row[keep])
            cand_i.append(keep + s)
        merged_s, merged_i = [], []
        for r in range(nq):
            sc = np.concatenate([best_s[r], cand_s[r]])
            ix = np.concatenate([best_i[r], cand_i[r]])
            order = np.lexsort((ix, -sc))[:k]
            merged_s.append(sc[order])
            merged_i.append(ix[order])
        best_s, best_i = np.stack(merged_s), np.stack(merged_i)
    return best_s, best_i


def mean_query(embeddings: np.ndarray) -> np.ndarray:
    """(P, D) embeddings of P paraphrases -> (1, D): their mean, re-normalised (Munakata et al. 2024, sec. 4.3)."""
    m = embeddings.mean(axis=0, keepdims=True)
    return (m / max(float(np.linalg.norm(m)), 1e-12)).astype(np.float32)


# -------------------------------------------------------------------------------------------- results
@dataclass
class Hit:
    rank: int
    path: str
    score: float
    duration: float


@dataclass
class CaptionHit:
    rank: int
    caption: str
    score: float


@dataclass
class SearchResult:
    """Ranked files (and, for an audio query with a caption set, ranked captions)."""

    query: list[str] | str
    models: list[str]
    hits: list[Hit]
    captions: list[CaptionHit] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"query": self.query, "models": self.models, "hits": [asdict(h) for h in self.hits],
                "captions": [asdict(c) for c in self.captions]}


# ------------------------------------------------------------------------------------------- captions
def read_captions(path: str | Path) -> list[str]:
    """Captions from a .txt (one a line), or a CSV/Parquet with a ``caption`` (folder format) or ``text``
    column (salsa2 captions.parquet); duplicates dropped, order kept."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: caption file not found")
    if path.suffix.lower() in (".csv", ".parquet"):
        df = pd.read_parquet(path) if path.suffix.lower() == ".parquet" else pd.read_csv(
            path, dtype=str, keep_default_na=False)
        column = next((c for c in ("caption", "text") if c in df.columns), None)
        if column is None:
            raise ValueError(f"{path}: no 'caption' or 'text' column (has {list(df.columns)}); "
                             "give a CSV/Parquet with one, or a .txt file with one caption a line")
        texts = df[column].astype(str).tolist()
    else:
        texts = path.read_text(encoding="utf-8").splitlines()
    texts = list(dict.fromkeys(t.strip() for t in texts if t.strip()))
    if not texts:
        raise ValueError(f"{path}: no captions in it")
    return texts


@dataclass
class CaptionSet:
    """Candidate captions for audio queries, embedded once per model."""

    texts: list[str]
    embeddings: dict[str, np.ndarray]

    @classmethod
    def build(cls, texts: Sequence[str] | str | Path, models: dict[str, SearchModel]) -> CaptionSet:
        texts = read_captions(texts) if isinstance(texts, (str, Path)) else list(dict.fromkeys(texts))
        return cls(texts, {name: embed_text(m, texts) for name, m in models.items()})


# -------------------------------------------------------------------------------------------- search
def check_query(texts: Sequence[str]) -> None:
    """A query must contain a word: an empty or punctuation-only query would rank every file arbitrarily."""
    for t in texts:
        if not any(ch.isalnum() for ch in normalize_for_model(str(t))):  # Unicode punctuation and symbols too
            raise UserError(f"query {t!r} has no words (only spaces or punctuation); describe the sound in words, "
                            "e.g. 'a dog barks while cars pass'")


def query_warnings(models: dict[str, SearchModel], texts: Sequence[str]) -> list[str]:
    """One line per problem the user should know of: a query cut to the text encoder's maximum length, a model
    that saw only the synthetic demo."""
    out = []
    for t in texts:
        for name, m in models.items():
            enc = m.model.text_encoder
            tokenizer, limit = getattr(enc, "tokenizer", None), getattr(enc, "max_length", None)
            if tokenizer is None or not limit:
                continue
            text = normalize_for_model(t) if m.normalize_text else t
            n = len(tokenizer(text, truncation=False)["input_ids"])
            if n > limit:
                out.append(f"the query is {n} tokens long; model {name} reads only the first {limit} "
                           f"(cut after about {' '.join(text.split()[: max(1, limit - 4)])[:60]!r}...)")
                break
    out += [w for w in (demo_only_warning(m.info, name) for name, m in models.items()) if w]
    return out


def missing_files_warning(index: Index, result: SearchResult) -> str | None:
    """A line when results name files that are no longer there (the library was moved or files deleted)."""
    if not index.root.is_dir():
        return (f"the indexed folder {index.root} no longer exists (moved?): the paths shown are where the files "
                "were; index the folder where they are now: salsa2 index DIR --model CHECKPOINT")
    gone = [h.path for h in result.hits if not Path(h.path).exists()]
    if not gone:
        return None
    return (f"{len(gone)} of the {len(result.hits)} results no longer exist (e.g. {gone[0]}); update the index: "
            f"salsa2 index {index.root}")


def load_index_models(index: Index, paths: dict[str, str | Path] | None = None,
                      use: Sequence[str] | None = None) -> dict[str, SearchModel]:
    """Load the checkpoints that built ``index`` (``paths`` overrides where they are now; ``use`` = subset).

    Raises:
        IndexFileError: a name is not in the index, or a checkpoint differs from the one that built it.
    """
    names = list(use) if use else list(index.models)
    unknown = [n for n in list(names) + list(paths or {}) if n not in index.models]
    if unknown:
        raise IndexFileError(f"models {unknown} are not in the index (it has {list(index.models)})")
    loaded = {}
    for n in names:
        try:
            loaded[n] = load_model((paths or {}).get(n, index.models[n]["path"]), n)
        except CheckpointError as err:  # moved or deleted since indexing: say how to point the index at it
            raise CheckpointError(f"{err} (for this index: --model {n}=PATH)") from None
    return check_models(index, loaded)


def check_models(index: Index, models: dict[str, SearchModel]) -> dict[str, SearchModel]:
    for name, m in models.items():
        if name not in index.models:
            raise IndexFileError(f"model {name!r} is not in the index (it has {list(index.models)})")
        if index.models[name]["id"] != m.model_id:
            raise IndexFileError(f"checkpoint {m.path} ({m.model_id}) is not the one that built the index's "
                                 f"{name!r} ({index.models[name]['id']}); re-index with `salsa2 index`")
    return models


def search(
    index: Index | str | Path,
    text: str | Sequence[str] | None = None,
    audio: str | Path | np.ndarray | None = None,
    *,
    k: int = 10,
    models: dict[str, SearchModel] | None = None,
    captions: CaptionSet | Sequence[str] | str | Path | None = None,
    sample_rate: int | None = None,
    exclude_self: bool = True,
    block: int = BLOCK,
) -> SearchResult:
    """Search ``index`` by ``text`` (one query, or several paraphrases of one query) or by ``audio``.

    Args:
        index: an ``Index`` or its path.
        text: the query; a list is treated as paraphrases whose embeddings are averaged.
        audio: an audio file or a mono waveform (at ``sample_rate``, default the models') to find similar sounds.
        k: results.
        models: loaded models by index name (default: load those that built the index); a subset searches
            with that subset only.
        captions: for an audio query, captions to rank too (a CaptionSet, a list, or a file).
        exclude_self: drop the query file from the audio results when it is in the index.
        block: index rows per matrix product.
    """
    index = read_index(index) if isinstance(index, (str, Path)) else index
    if (text is None) == (audio is None):
        raise ValueError("give exactly one of a text query or an audio query")
    if int(k) < 1:
        raise UserError(f"-k {k}: ask for at least 1 result")
    if len(index) == 0:
        raise UserError(f"the index of {index.root} holds no sounds ({len(index.rejects)} unreadable files); "
                        "index a folder with audio files: salsa2 index DIR --model CHECKPOINT")
    models = check_models(index, models) if models is not None else load_index_models(index)
    names = list(models)
    if text is not None:
        texts = [text] if isinstance(text, str) else list(text)
        if not texts:
            raise ValueError("empty list of query paraphrases")
        check_query(texts)
        queries = [mean_query(embed_text(models[n], texts)) for n in names]
        query: list[str] | str = texts
    else:
        queries = [embed_audio(models[n], [audio], sample_rate=sample_rate) for n in names]
        query = str(audio) if isinstance(audio, (str, Path)) else "<waveform>"
    skip = index.position(audio) if exclude_self and isinstance(audio, (str, Path)) else None
    scores, rows = top_k(queries, [index.embeddings[n] for n in names], k + (skip is not None), block)
    hits = []
    for s, r in zip(scores[0], rows[0]):
        if r == skip or len(hits) == k or not np.isfinite(s):
            continue
        hits.append(Hit(len(hits) + 1, index.full_path(int(r)), float(s), float(index.files["duration"].iat[r])))
    caption_hits: list[CaptionHit] = []
    if audio is not None and captions is not None:
        cset = captions if isinstance(captions, CaptionSet) else CaptionSet.build(captions, models)
        missing = [n for n in names if n not in cset.embeddings]
        if missing:
            raise ValueError(f"the caption set has no embeddings for models {missing}; build it with the same models")
        cs, ci = top_k(queries, [cset.embeddings[n] for n in names], k, block)
        caption_hits = [CaptionHit(j + 1, cset.texts[int(i)], float(s)) for j, (s, i) in enumerate(zip(cs[0], ci[0]))]
    return SearchResult(query, names, hits, caption_hits)
