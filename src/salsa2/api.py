"""The Python API of a trained salsa2 model as a sound search engine (the functions ``salsa2 index/search`` use).

    from salsa2 import api
    model = api.load_model("models/stage2/cnn")         # or a released model by name: load_model("passt_roberta")
    api.embed_text(model, ["a dog barks"])                 # (1, D), L2-normalised
    api.embed_audio(model, ["dog.wav", waveform_16k])      # (2, D)
    api.build_index("sounds/", "sounds.parquet", [model])  # or {"cnn": "models/stage2/cnn", ...}
    result = api.search("sounds.parquet", "a dog barks while cars pass", k=10)
    result = api.search(index, ["a dog barks", "a barking dog"])               # paraphrases, averaged
    result = api.search(index, audio="query.wav", captions="captions.csv")     # similar sounds + captions

Loading a model takes seconds (the text encoder); load once and pass ``models={name: model}`` to ``search``.
"""

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
    "SearchModel",
    "SearchResult",
    "build_index",
    "embed_audio",
    "embed_mels",
    "embed_text",
    "load_index_models",
    "load_model",
    "mean_query",
    "read_captions",
    "read_index",
    "search",
    "top_k",
]
