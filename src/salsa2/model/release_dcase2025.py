"""The DCASE 2025 task 6 baseline (CPJKU/dcase2025_task6_baseline) as an ordinary salsa2 checkpoint folder.

The baseline is the PaSST + RoBERTa-large dual encoder of Primus et al. 2024 without the sequence model, trained on
ClothoV2, AudioCaps and WavCaps; its README links one Lightning checkpoint of ``AudioRetrievalModel``
(d25_t6/retrieval_module.py there) and reports mAP@16 40.59 (the DCASE 2025 judgements), mAP@10 35.23, R@1 23.29
on the Clotho evaluation split. Trained with ``--compile``: ``torch.compile`` wraps the text model and the PaSST
net, so their keys carry ``_orig_mod.`` (taken out by :func:`salsa2.model.released.read_released`). Its entries
and salsa2's for each:

- ``audio_embedding_model.model.model._orig_mod.*``: the PaSST net (``CutInputIntoSegmentsWrapper`` >
  ``PaSSTSNoOverlapWrapper`` > hear21passt ``passt_s_p16_s16_128_ap468``, d25_t6/passt.py) ->
  ``audio_encoder.backbone.net.*``; its mel frontend has no saved state;
- ``text_embedding_model._orig_mod.*``: ``RobertaModel`` without pooler -> ``text_encoder.model.*``;
- ``audio_projection.{weight,bias}`` (768 -> 1024) -> ``audio_proj.*``;
- ``text_projection.{weight,bias}`` (1024 -> 1024) -> ``text_proj.*``;
- ``tau`` (fixed with ``--no-tau_trainable``) -> config.json ``released.tau``.

Inference path (``forward_audio`` / ``forward_text`` there, d25_t6/predict.py): audio at 32 kHz zero-padded to
30 s, cut into three 10 s snippets, each one's PaSST embedding the mean of its class and distillation tokens
(hear21passt's ``features``), the mean over the first 1, 2 or 3 snippets for a clip of <= 10 s, <= 20 s or longer,
``audio_projection``, L2 normalisation; captions lower-cased with punctuation deleted, the roberta-large
tokenizer padded to 32 tokens with truncation, the first token's output, ``text_projection``, L2 normalisation.
Up to 30 s the snippet rule is salsa's first ceil(duration / 10 s) snippets, so the imported model is configured
as :mod:`salsa2.model.release_import`'s (``min_snippet_frames: 1``). A clip longer than 30 s is cropped at a
random position there (d25_t6/datasets/audio_loading.py ``_pad_or_subsample_audio``); salsa2 averages over all
its snippets.
"""

from __future__ import annotations

from pathlib import Path

from salsa2.model.release_import import ReleaseLayout, import_release

SOURCE_REPOSITORY = "https://github.com/CPJKU/dcase2025_task6_baseline"
RELEASE_FILE = "dcase2025_task6_baseline.ckpt"  # the README links a share page; the joined file is stored so
PAGE = "https://cloud.cp.jku.at/index.php/s/6ZTQ3mcwk9AAS4i"  # the README's link to the checkpoint


def _train_on(hyper: dict) -> str:
    """The training sets the baseline's flags name (d25_t6/train.py: Clotho always, ``--audiocaps``, ``--wavcaps``)."""
    sets = ["clothov2"] + [name for name in ("audiocaps", "wavcaps") if hyper.get(name)]
    return "+".join(sets)


LAYOUT = ReleaseLayout(
    kind="dcase2025_baseline", source=SOURCE_REPOSITORY, release_file=RELEASE_FILE,
    model="the DCASE 2025 task 6 baseline (CPJKU/dcase2025_task6_baseline)",
    note="the DCASE 2025 task 6 baseline (Clotho evaluation split mAP@16 40.59, mAP@10 35.23, R@1 23.29 there)",
    prefixes={
        "audio_embedding_model.model.model.": "audio_encoder.backbone.net.",
        "text_embedding_model.": "text_encoder.model.",
        "audio_projection.": "audio_proj.",
        "text_projection.": "text_proj.",
    },
    unused=("tau",), train_on=_train_on)


def import_dcase2025_release(checkpoint_path: str | Path, out_dir: str | Path, text_model: str = "roberta-large",
                             text_kwargs: dict | None = None, sha256: bool = True) -> Path:
    """:func:`salsa2.model.release_import.import_release` of the DCASE 2025 baseline's checkpoint."""
    return import_release(LAYOUT, checkpoint_path, out_dir, text_model, text_kwargs, sha256)
