"""The Python API of a trained salsa2 model as a sound search engine (the functions ``salsa2 index/search`` use).

    from salsa2 import api
    model = api.load_model("models/stage2/cnn")         # or a released model by name: load_model("passt_roberta")
    api.embed_text(model, ["a dog barks"])                 # (1, D), L2-normalised
    api.embed_audio(model, ["dog.wav", waveform_16k])      # (2, D)
    api.build_index("sounds/", "sounds.parquet", [model])  # or {"cnn": "models/stage2/cnn", ...}
    result = api.search("sounds.parquet", "a dog barks while cars pass", k=10)
    result = api.search(index, ["a dog barks", "a barking dog"])               # paraphrases, averaged
    result = api.search(index, audio="query.wav", captions="captions.csv")     # similar sounds + captions
    api.build_index("long/", "long.parquet", [model], windows=(4.0, 1.0))   # + sliding-window embeddings
    moments = api.search_moments("long.parquet", "a dog barks", k=10)        # file, start, end, score
    api.plot_moments(moments, "moments.png")                                 # score over time, moments marked
    api.window_embeddings(model, "long.wav", window=4.0, hop=1.0)            # one recording's windows
    api.find_moments(starts, ends, scores, method="threshold")               # moments from window scores

Loading a model takes seconds (the text encoder); load once and pass ``models={name: model}`` to ``search``.
"""

from salsa2.moments.detect import Moment, find_moments
from salsa2.moments.moment_search import MomentHit, MomentResult, search_moments
from salsa2.moments.plot import plot_moments
from salsa2.moments.windows import WindowEmbeddings, window_embeddings
from salsa2.search.index import Index, IndexReport, build_index, read_index
from salsa2.search.inference import SearchModel, embed_audio, embed_mels, embed_text, load_model
from salsa2.search.query import (
    CaptionSet,
    SearchResult,
    load_index_models,
    mean_query,
    read_captions,
    search,
    top_k,
)

__all__ = [
    "CaptionSet",
    "Index",
    "IndexReport",
    "Moment",
    "MomentHit",
    "MomentResult",
    "SearchModel",
    "SearchResult",
    "WindowEmbeddings",
    "build_index",
    "embed_audio",
    "embed_mels",
    "embed_text",
    "find_moments",
    "load_index_models",
    "load_model",
    "mean_query",
    "plot_moments",
    "read_captions",
    "read_index",
    "search",
    "search_moments",
    "top_k",
    "window_embeddings",
]
