"""The authors' released PaSST + RoBERTa-large model as an ordinary salsa2 checkpoint folder.

OptimusPrimus/salsa publishes ``passt_roberta.ckpt`` (scripts/download_checkpoint.sh; README: ``load_model=
passt_roberta.ckpt`` with ``audio_features.model=passt sentence_features.model=roberta-large``), a Lightning
checkpoint of ``AudioRetrievalModel`` (experiments/ex_dcase24.py). Its entries and salsa2's for each:

- ``audio_embedding_model.model.model.*``: the PaSST net (``WindowedPrediction`` > ``Wrapper`` > PaSST,
  models/audio/base.py and models/audio/passt.py there) -> ``audio_encoder.backbone.net.*``;
- ``sentence_embedding_model.*``: ``RobertaModel`` without pooler -> ``text_encoder.model.*``;
- ``project_audio.0.{weight,bias}`` (768 -> 1024) -> ``audio_proj.*``;
- ``project_sentence.0.{weight,bias}`` (1024 -> 1024) -> ``text_proj.*``;
- ``tau`` (a fixed temperature; salsa2's model has none) -> config.json ``released.tau``;
- ``audio_token``, ``timing_tau``, ``posencode.*`` (no sequence model in this release): dropped.

The PaSST net keeps its AudioSet heads (``head.*``, ``head_dist.*``): salsa2's backbone has them too, and neither
model uses them for the embedding. ``embeddings.position_ids`` (a constant buffer older transformers saved) is optional.

Inference path the imported model gets (``forward_audio`` / ``forward_sentence`` / ``rank_sequences`` there):
32 kHz audio, the Kaldi 128-bin mel frontend (params-paper.yaml ``kaldi128``), 10 s snippets of the clip
zero-padded to whole snippets, each snippet's PaSST embedding the mean of its class and distillation tokens,
averaged over the snippets holding audio (every started snippet: ``min_snippet_frames: 1``, the authors' first
ceil(fraction x 3) of a 30 s clip), then ``project_audio``; captions lower-cased with punctuation deleted
(``text_normalize: authors``), at most 32 tokens, the first token's output, then ``project_sentence``; both
L2-normalised. The authors take a random 30 s crop of a longer clip (data/datasets/wrapper.py there); salsa2
averages over all its snippets.

The import itself (:func:`import_release`) is shared by every kind of release: a :class:`ReleaseLayout` names the
key prefixes and provenance of one kind; :func:`release_layouts` lists the kinds (``salsa`` here, the DCASE 2025
baseline in salsa2.model.release_dcase2025).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from salsa2.audio.frontends import FrontendConfig
from salsa2.model.checkpoint import save_checkpoint
from salsa2.model.dual_encoder import DualEncoder, ModelConfig
from salsa2.model.released import ReleasedCheckpointError, read_released
from salsa2.utils.digest import file_digest
from salsa2.utils.fsutil import atomic_dir

SOURCE_REPOSITORY = "https://github.com/OptimusPrimus/salsa"
RELEASE_FILE = "passt_roberta.ckpt"
SHARED_DIM = 1024  # ``shared_representation_size`` of the release

# params-paper.yaml ``kaldi128``: PaSST's AugmentMelSTFT in evaluation mode (models/audio/passt.py there)
KALDI128 = dict(sample_rate=32000, n_fft=1024, win_length=800, hop_length=320, n_mels=128, f_min=0.0,
                f_max=15000.0, mel_scale="kaldi", preemphasis=0.97, preemphasis_trim=True, window="hann_symmetric",
                log_offset=1.0e-5, norm_mean=-4.5, norm_std=5.0, frames_past_end=True)
AUDIO_KWARGS = dict(weights="none", patchout_f=2, patchout_t=15, snippet_seconds=10.0, min_snippet_frames=1)
TEXT_KWARGS = dict(max_length=32, pooling="cls", dropout=0.2, trainable_layers=-1)


@dataclass(frozen=True)
class ReleaseLayout:
    """How one kind of released checkpoint maps onto salsa2's PaSST + RoBERTa dual encoder.

    ``prefixes``: released key prefix -> salsa2 key prefix (after torch.compile's ``_orig_mod.`` is taken out,
    :func:`salsa2.model.released.strip_compile_prefix`); ``unused`` / ``unused_prefixes``: entries dropped;
    ``release_file``: the name the release gives the (joined) checkpoint; ``model``: how the messages name it;
    ``note``: the provenance line of config.json; ``train_on``: the training data, from the hyper-parameters."""

    kind: str
    source: str
    release_file: str
    model: str
    note: str
    prefixes: dict[str, str]
    unused: tuple[str, ...] = ()
    unused_prefixes: tuple[str, ...] = ()
    train_on: Callable[[dict], Any] = field(default=lambda hyper: hyper.get("train_on"))


SALSA = ReleaseLayout(
    kind="salsa", source=SOURCE_REPOSITORY, release_file=RELEASE_FILE,
    model="the PaSST + RoBERTa-large release of OptimusPrimus/salsa",
    note="released by the authors of Primus et al. 2024 (ClothoV2 R@1 27.69, mAP@10 40.11 there)",
    prefixes={
        "audio_embedding_model.model.model.": "audio_encoder.backbone.net.",
        "sentence_embedding_model.": "text_encoder.model.",
        "project_audio.0.": "audio_proj.",
        "project_sentence.0.": "text_proj.",
    },
    unused=("tau", "timing_tau", "audio_token"), unused_prefixes=("posencode.",))
PREFIXES = SALSA.prefixes  # released prefix -> salsa2 prefix
UNUSED = SALSA.unused
UNUSED_PREFIXES = SALSA.unused_prefixes
OPTIONAL_BUFFERS = ("text_encoder.model.embeddings.position_ids",)  # saved by older transformers only


class ReleaseImportError(ReleasedCheckpointError):
    """The released checkpoint does not hold the PaSST + RoBERTa-large model salsa2 imports."""


def paper_model_config(text_model: str = "roberta-large", text_kwargs: dict | None = None) -> ModelConfig:
    """The salsa2 model a release is loaded into: PaSST (kaldi128, 10 s snippets) + RoBERTa-large, D = 1024."""
    return ModelConfig(audio_arch="passt", frontend=FrontendConfig(**KALDI128), text_model=text_model,
                       embed_dim=SHARED_DIM, audio_kwargs=dict(AUDIO_KWARGS),
                       text_kwargs={**TEXT_KWARGS, **(text_kwargs or {})}, pooling="mean")


def release_layouts() -> dict[str, ReleaseLayout]:
    """Release kind (config.params.RELEASE_KINDS) -> its layout; a kind is one module plus its line here."""
    from salsa2.model import release_dcase2025  # imports this module: a lazy import

    return {layout.kind: layout for layout in (SALSA, release_dcase2025.LAYOUT)}


def release_layout(kind: str) -> ReleaseLayout:
    """The layout of release kind ``kind``."""
    layouts = release_layouts()
    if kind not in layouts:
        raise ReleasedCheckpointError(f"release kind {kind!r} is not known; known: {sorted(layouts)}")
    return layouts[kind]


def _is_layout(key: str, layout: ReleaseLayout) -> bool:
    return key in layout.unused or key.startswith(layout.unused_prefixes) or key.startswith(tuple(layout.prefixes))


def _other_kind(released: dict[str, torch.Tensor], layout: ReleaseLayout) -> str:
    """A hint naming the kind to give when every key of ``released`` fits another kind's layout, else ``""``."""
    for other in release_layouts().values():
        if other.kind != layout.kind and all(_is_layout(k, other) for k in released):
            return f" (its keys are those of a {other.kind!r} release: give kind {other.kind})"
    return ""


def map_state_dict(released: dict[str, torch.Tensor], path: str | Path = "",
                   layout: ReleaseLayout = SALSA) -> dict[str, torch.Tensor]:
    """Released keys -> salsa2 keys (``layout.prefixes``); unused entries dropped, unknown keys refused."""
    mapped: dict[str, torch.Tensor] = {}
    for key, value in released.items():
        if key in layout.unused or key.startswith(layout.unused_prefixes):
            continue
        prefix = next((p for p in layout.prefixes if key.startswith(p)), None)
        if prefix is None:
            raise ReleaseImportError(
                f"{path}: unexpected key {key!r}: not {layout.model}{_other_kind(released, layout)} "
                f"(e.g. a sequence model or another encoder); use {layout.release_file}"
            )
        mapped[layout.prefixes[prefix] + key[len(prefix):]] = value
    return mapped


def released_name(key: str, layout: ReleaseLayout = SALSA) -> str:
    """A salsa2 key as the release names it (the inverse of ``layout.prefixes``)."""
    for released, ours in layout.prefixes.items():
        if key.startswith(ours):
            return released + key[len(ours):]
    return key


def _first(keys: Iterable[str], layout: ReleaseLayout, n: int = 3) -> str:
    keys = sorted(released_name(k, layout) for k in keys)
    return ", ".join(keys[:n]) + (f" and {len(keys) - n} more" if len(keys) > n else "")


def check_state_dict(model: DualEncoder, mapped: dict[str, torch.Tensor], path: str | Path = "",
                     layout: ReleaseLayout = SALSA) -> None:
    """Refuse missing keys, keys the model lacks and shape mismatches (one line naming the file); completes
    or drops the optional buffers in ``mapped``."""
    own = model.state_dict()
    for key in OPTIONAL_BUFFERS:  # whether saved depends on the transformers version, not on the weights
        if key in own and key not in mapped:
            mapped[key] = own[key]
        elif key in mapped and key not in own:
            del mapped[key]
    missing = own.keys() - mapped.keys()
    if missing:
        raise ReleaseImportError(f"{path}: missing {len(missing)} weights of the PaSST + RoBERTa-large model "
                                 f"({_first(missing, layout)}); the file is not the complete {layout.release_file}")
    extra = mapped.keys() - own.keys()
    if extra:
        raise ReleaseImportError(f"{path}: weights of another architecture ({_first(extra, layout)}); not "
                                 f"{layout.model} ({layout.release_file})")
    for key, value in mapped.items():
        if tuple(value.shape) != tuple(own[key].shape):
            raise ReleaseImportError(f"{path}: {released_name(key, layout)} has shape {tuple(value.shape)}, the "
                                     f"PaSST + RoBERTa-large model expects {tuple(own[key].shape)}; not "
                                     f"{layout.release_file}")


def _scalar(value: torch.Tensor | None) -> float | None:
    return None if value is None or value.numel() != 1 else float(value.float().abs().item())


def import_release(layout: ReleaseLayout, checkpoint_path: str | Path, out_dir: str | Path,
                   text_model: str = "roberta-large", text_kwargs: dict | None = None, sha256: bool = True) -> Path:
    """Write ``out_dir`` (model.safetensors + config.json, :func:`salsa2.model.checkpoint.load_checkpoint`) from a
    released checkpoint of kind ``layout``; returns ``out_dir``.

    ``text_model`` / ``text_kwargs``: the salsa2 text encoder the RoBERTa weights go into (its tokenizer is
    used; the default ``roberta-large`` fetches it, and the pretrained weights it overwrites, from the hub
    once). ``sha256``: record the file's sha256 in ``trained_on`` (one read of the file). Any mismatch raises
    :class:`ReleaseImportError` naming the file; nothing is written then."""
    checkpoint_path, out_dir = Path(checkpoint_path), Path(out_dir)
    if out_dir.exists() and (not out_dir.is_dir() or (any(out_dir.iterdir())
                                                      and not (out_dir / "config.json").is_file())):
        raise ReleaseImportError(f"{out_dir}: exists and is not a salsa2 checkpoint folder; choose a new folder")
    released, hyper = read_released(checkpoint_path)
    mapped = map_state_dict(released, checkpoint_path, layout)
    model = DualEncoder(paper_model_config(text_model, text_kwargs))
    check_state_dict(model, mapped, checkpoint_path, layout)
    model.load_state_dict(mapped, strict=True)
    del mapped
    tau = _scalar(released.get("tau"))
    del released
    model.eval()
    trained_on: dict[str, Any] = {
        "source": layout.source, "file": checkpoint_path.name, "sha256": None, "kind": layout.kind,
        "train_on": layout.train_on(hyper), "synthetic_only": False, "note": layout.note,
    }
    if sha256:
        trained_on["sha256"] = file_digest(checkpoint_path)
    info = {"text_normalize": "authors", "trained_on": trained_on,
            "released": {"tau": tau, "hyper_parameters": _plain(hyper)}}
    with atomic_dir(out_dir) as tmp:
        save_checkpoint(tmp, model, info)
    return out_dir


def import_salsa_release(checkpoint_path: str | Path, out_dir: str | Path, text_model: str = "roberta-large",
                         text_kwargs: dict | None = None, sha256: bool = True) -> Path:
    """:func:`import_release` of the authors' ``passt_roberta.ckpt`` (OptimusPrimus/salsa)."""
    return import_release(SALSA, checkpoint_path, out_dir, text_model, text_kwargs, sha256)


def _plain(obj: Any) -> Any:
    """JSON-safe copy of the release's sacred config (tensors and other objects as their repr)."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    return repr(obj)
