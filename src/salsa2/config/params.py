"""params.yaml -> frozen dataclasses. Unknown keys are rejected with the dotted path that holds them (a top-level
one with the closest known key); values of the wrong type or out of range name their key (``check_params``, run
by every stage before it imports anything heavy, and by stage ``params`` that every other stage depends on).

Imported by every stage, so it stays light: no torch, nothing from training (tests/pipeline/test_dvc_deps.py).
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from salsa2.audio.frontend_config import FrontendConfig
from salsa2.utils.errors import UserError

T = TypeVar("T")


class ConfigError(UserError, ValueError):
    pass


def parse(cls: type[T], data: Any, where: str) -> T:
    """Build dataclass ``cls`` from a mapping, recursing into dataclass-typed fields."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; known: {sorted(names)}")
    kwargs = {}
    for key, value in data.items():
        hint = hints[key]
        check_type(value, hint, _key(where, key))
        if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
            args = [a for a in typing.get_args(hint) if a is not type(None)]
            hint = args[0] if len(args) == 1 else hint
        if dataclasses.is_dataclass(hint) and isinstance(value, dict):
            value = parse(hint, value, _key(where, key))
        kwargs[key] = value
    try:
        built = cls(**kwargs)
    except TypeError as err:
        raise ConfigError(f"{where}: {err}") from None
    except ConfigError as err:
        msg = str(err)
        raise ConfigError(msg if msg.startswith(where.split(":")[0]) else f"{where}: {msg}") from None
    except ValueError as err:
        raise ConfigError(f"{where}: {err}") from None
    check_ranges(built, where)
    return built


def _key(where: str, key: str) -> str:
    """The name of ``key`` inside ``where``: ``params.yaml: stage1``, ``params.yaml: stage1.epochs``."""
    return f"{where}: {key}" if where.endswith(".yaml") else f"{where}.{key}"


_TYPE_NAMES = {int: "an integer", float: "a number", bool: "true or false", str: "a string", dict: "a mapping",
               list: "a list", type(None): "null"}


def _matches(value: Any, hint: Any) -> bool:
    """Whether a YAML value fits a field's type hint (ints count as floats, bools as neither)."""
    if hint is Any or hint is typing.Any:
        return True
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        return any(_matches(value, a) for a in typing.get_args(hint))
    hint = typing.get_origin(hint) or hint
    if dataclasses.is_dataclass(hint):
        return isinstance(value, dict)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is type(None):
        return value is None
    return isinstance(value, hint) if isinstance(hint, type) else True


def check_type(value: Any, hint: Any, where: str) -> None:
    """``ConfigError`` naming the key, the value and the expected type when ``value`` does not fit ``hint``."""
    if _matches(value, hint):
        return
    options = typing.get_args(hint) if (isinstance(hint, types.UnionType)
                                        or typing.get_origin(hint) is typing.Union) else (hint,)
    names = " or ".join(_TYPE_NAMES.get(typing.get_origin(o) or o, getattr(o, "__name__", str(o))) for o in options)
    raise ConfigError(f"{where} is {value!r}; expected {names}")


# field -> (lowest, highest, lowest excluded); a value outside is refused with its key (check_ranges)
_RANGES: dict[str, dict[str, tuple[float | None, float | None, bool]]] = {
    "TrainParams": {"epochs": (1, None, False), "batch_size": (1, None, False), "lr": (0, None, True),
                    "lr_min": (0, None, False), "warmup_epochs": (0, None, False), "cosine_epochs": (0, None, False),
                    "loss_lr": (0, None, False), "weight_decay": (0, None, False), "grad_clip": (0, None, False),
                    "max_seconds": (0, None, False), "sup_weight": (0, 1, False), "nproc": (1, None, False),
                    "prefetch": (0, None, False), "relevance_weight": (0, 1, False)},
    "TextParams": {"max_length": (1, None, False), "trainable_layers": (-1, None, False), "lr": (0, None, True)},
    "AugmentParams": {"mixco_tau": (0, None, True), "text_mask_views": (0, None, False)},
    "AudioEncoderParams": {"lr": (0, None, True), "batch_size": (1, None, False)},
    "Params": {"embed_dim": (1, None, False)},
}
_CHOICES: dict[str, dict[str, tuple[str, ...]]] = {
    "TrainParams": {"layout": ("clips", "pairs"), "targets": ("auto", "dense", "embeddings"),
                    "precision": ("auto", "fp32", "bf16", "fp16"), "device": ("auto", "cpu", "cuda")},
    "Params": {"pooling": ("mean", "tap")},
}


def _in_range(value: float, low: float | None, high: float | None, open_low: bool) -> bool:
    return not ((low is not None and (value <= low if open_low else value < low))
                or (high is not None and value > high))


def _range_text(low: float | None, high: float | None, open_low: bool) -> str:
    if high is None:
        return f"{'>' if open_low else '>='} {low:g}"
    return f"in {'(' if open_low else '['}{low:g}, {high:g}]"


def check_ranges(obj: Any, where: str) -> None:
    """``ConfigError`` naming the key when a parsed section's value lies outside its range or choices."""
    name = type(obj).__name__
    for key, (low, high, open_low) in _RANGES.get(name, {}).items():
        value = getattr(obj, key)
        if value is not None and not _in_range(value, low, high, open_low):
            raise ConfigError(f"{_key(where, key)} is {value!r}; it must be {_range_text(low, high, open_low)}")
    for key, allowed in _CHOICES.get(name, {}).items():
        value = getattr(obj, key)
        if value not in allowed:
            close = difflib.get_close_matches(str(value), allowed, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"{_key(where, key)} is {value!r}{hint}; choose one of {', '.join(allowed)}")


@dataclass(frozen=True)
class AugmentParams:
    """``augment`` in params.yaml (used by ``salsa2.training.augment``)."""

    mixco: bool = False
    mixco_tau: float = 0.05
    text_mask: float = 0.0
    text_mask_views: int = 0  # 0: re-mask every batch; k: k masked views per caption, drawn once (frozen text)

    def __post_init__(self) -> None:
        if not 0.0 <= self.text_mask < 1.0:
            raise ValueError(f"augment.text_mask must lie in [0, 1), got {self.text_mask}")


@dataclass(frozen=True)
class AudioEncoderParams:
    """One entry of ``audio_encoders`` (architecture, learning rate, kwargs) with the frontend ``encoders`` gives it."""

    arch: str
    frontend: str
    lr: float = 1e-3
    batch_size: int | None = None
    kwargs: dict = field(default_factory=dict)


@dataclass(frozen=True)
class TextParams:
    model: str = "minilm"
    max_length: int = 32
    trainable_layers: int = 0
    normalize: bool | str = "spaces"  # salsa2.data.text_norm: authors | spaces | none (true = spaces, false = none)
    pooling: str | None = None
    lr: float = 2e-5
    dropout: float | None = None  # null: the encoder's own (roberta-large: 0.2 as the authors; others as trained)

    def __post_init__(self) -> None:
        from salsa2.data.text_norm import normalize_mode

        try:
            normalize_mode(self.normalize)
        except ValueError as err:
            raise ConfigError(f"params.yaml: {err}") from None


@dataclass(frozen=True)
class TrainParams:
    """One training stage's schedule: Adam, ``warmup_epochs`` of linear warm-up, cosine decay to ``lr_min``.

    ``lr`` is the projection heads' rate; encoders use their own (``audio_encoders.<name>.lr``, ``text.lr``)
    and the loss's learnable parameters ``loss_lr``; all follow the same schedule shape (scaled by
    ``lr_min / lr`` at the end). ``layout``: ``clips`` = each batch holds ``batch_size`` clips with all their
    captions (an epoch visits every clip once); ``pairs`` = each batch holds ``batch_size`` caption-clip pairs
    (an epoch visits every caption once; as in Primus et al. 2024). ``max_seconds`` > 0: a training batch crops
    each clip longer than that to a window of the frames a ``max_seconds`` clip has, at a uniform random offset
    drawn from the run's generator (seeded by ``seed``, drawn afresh at every visit, saved with the resume state;
    ``salsa2.features.splits.crop_frames``); the paper preset's 30 s is the authors' ``set_fixed_length(30)``.
    0: whole clips. Validation and evaluation always embed whole clips.

    Scale (``salsa2.training.amp``, ``salsa2.training.distributed``, ``salsa2.training.resume``,
    ``salsa2.distill.targets``): ``precision``
    auto | fp32 | bf16 | fp16 (autocast; fp16 with loss scaling, CUDA only; auto: bf16, else fp16, on CUDA,
    fp32 on CPU); ``accumulate`` k > 1 steps the optimizer once every k batches on the mean of their
    losses. Each batch keeps its own in-batch negatives, so this averages k contrastive losses of ``batch_size``
    (it does not make a k times larger contrastive batch; for that, spread the batch over GPUs with
    torchrun). ``device``: auto (CUDA when present) | cpu | cuda. ``nproc``, ``compile``, ``prefetch``,
    ``ddp_*``: docs/scale.md.
    ``resume``: checkpoint every epoch and continue a killed run. ``targets`` (stage 2): how C-hat is
    stored, dense | embeddings | auto (dense up to ``salsa2.distill.targets.DENSE_MAX_ENTRIES`` entries).
    """

    epochs: int = 10
    batch_size: int = 32
    layout: str = "clips"
    lr: float = 1e-3
    lr_min: float = 1e-6
    warmup_epochs: float = 1.0
    cosine_epochs: float = 0.0  # the cosine ends here, lr_min after (0: at the last epoch; authors: 15 of 20)
    loss_lr: float = 0.1
    weight_decay: float = 0.0
    grad_clip: float = 0.0
    max_seconds: float = 0.0
    sup_weight: float = 1.0
    teachers: str | list = "all"
    targets: str = "auto"
    precision: str = "auto"
    accumulate: int = 1
    device: str = "auto"
    nproc: int = 1               # processes (GPUs) of the job; > 1: stages/train.py re-runs itself under torchrun
    compile: str = "none"        # none | a torch.compile backend (inductor on GPUs; eager/aot_eager to debug)
    prefetch: int = 2            # batches collated ahead in a thread (0: in line); same batches either way
    ddp_find_unused: bool = False  # DDP find_unused_parameters (a parameter may get no gradient in a step)
    ddp_static_graph: bool = False  # DDP static_graph (the same autograd graph every step)
    resume: bool = True
    relevance_weight: float = 0.0  # stage 2: share of ListNet (caption-relevance) targets in L_dist
    validate_every: int = 1        # validate every k epochs (and always the last); the best validated is kept

    def __post_init__(self) -> None:
        if self.max_seconds < 0:
            raise ConfigError(f"max_seconds must be >= 0 (a training crop; 0: whole clips), got {self.max_seconds}")
        if self.accumulate < 1:
            raise ConfigError(f"accumulate must be >= 1 (optimizer step every k batches), got {self.accumulate}")
        if self.validate_every < 1:
            raise ConfigError(f"validate_every must be >= 1 (validate every k epochs), got {self.validate_every}")


@dataclass(frozen=True)
class ReleaseParams:
    """One entry of ``released`` in params.yaml: a model published by others, fetched and imported by stage
    ``release@<name>`` (salsa2.model.release_fetch). ``parts``: the URLs of its parts in the order they are
    joined; ``sha256``: one digest per part, or none (the first download's digests are recorded and later
    copies checked against them); ``kind``: the importer (``salsa``: OptimusPrimus/salsa's PaSST + RoBERTa-large,
    salsa2.model.release_import; ``dcase2025_baseline``: CPJKU/dcase2025_task6_baseline,
    salsa2.model.release_dcase2025); ``text_model``: the salsa2 text encoder its text weights go into."""

    parts: list[str]
    kind: str = "salsa"
    sha256: list[str] = field(default_factory=list)
    text_model: str = "roberta-large"

    def __post_init__(self) -> None:
        if not isinstance(self.parts, list) or not self.parts or not all(
                isinstance(u, str) and u for u in self.parts):
            raise ConfigError(f"parts must be a non-empty list of URLs in join order, got {self.parts!r}")
        if not isinstance(self.sha256, list) or (self.sha256 and len(self.sha256) != len(self.parts)):
            raise ConfigError(f"sha256 must list one digest per part ({len(self.parts)}) or be empty, "
                              f"got {self.sha256!r}")
        if self.kind not in RELEASE_KINDS:
            raise ConfigError(f"kind {self.kind!r} is not known; known: {sorted(RELEASE_KINDS)}")


RELEASE_KINDS = ("salsa", "dcase2025_baseline")  # importers: model.release_import.release_layouts


def release_params(raw: dict, name: str) -> ReleaseParams:
    """``released.<name>`` of the raw params.yaml mapping, validated (unknown keys refused)."""
    released = raw.get("released") or {}
    if name not in released:
        raise ConfigError(f"params.yaml: no entry {name!r} under released (has {sorted(released)})")
    where = f"params.yaml: released.{name}"
    try:
        return parse(ReleaseParams, released[name], where)
    except ConfigError as err:
        msg = str(err)
        raise ConfigError(msg if msg.startswith(where) else f"{where}: {msg}") from None


@dataclass(frozen=True)
class MomentsDemoParams:
    """``moments.demo``: the long-recording demo (salsa2.moments.demo) built from the demo's test clips."""

    recordings: int = 5
    min_seconds: int = 60
    max_seconds: int = 300
    min_clips: int = 2
    max_clips: int = 8
    seed: int = 0


@dataclass(frozen=True)
class MomentsParams:
    """``moments`` in params.yaml: sliding windows (``window``, ``hop`` seconds; salsa2.moments.windows), how
    moments are found from their scores (``method`` and its parameters under ``methods.<method>``;
    salsa2.moments.detect), windows per encoder call, and the long-recording demo."""

    window: float = 4.0
    hop: float = 1.0
    method: str = "threshold"
    methods: dict = field(default_factory=dict)
    batch_size: int = 16
    demo: MomentsDemoParams = field(default_factory=MomentsDemoParams)

    def __post_init__(self) -> None:
        for name in ("window", "hop"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0:
                raise ConfigError(f"params.yaml: moments.{name} must be positive seconds, got {v!r}")
        if not isinstance(self.methods, dict) or not all(isinstance(v, dict) for v in self.methods.values()):
            raise ConfigError(f"params.yaml: moments.methods must map a method to its parameters, got "
                              f"{self.methods!r}")

    def method_params(self) -> dict:
        """The parameters of the selected method (``methods.<method>``; none listed: the method's defaults)."""
        return dict(self.methods.get(self.method) or {})


def moments_params(raw: dict) -> MomentsParams:
    """``moments`` of the raw params.yaml mapping, validated (unknown keys refused; absent: the defaults)."""
    return parse(MomentsParams, raw.get("moments") or {}, "params.yaml: moments")


@dataclass(frozen=True)
class Params:
    encoders: Any  # dict: name -> the frontend it reads, the encoders that get models (the dvc.yaml foreach axis)
    loss: str
    seed: int
    frontends: dict
    audio_encoders: dict
    text: TextParams
    embed_dim: int
    losses: dict
    stage1: TrainParams
    stage2: TrainParams
    pooling: str = "mean"                      # mean | tap (Tymofieiev 2025, sec. 3.6)
    tap: dict = field(default_factory=dict)    # TextAwarePooling kwargs: proj_dim, dropout
    augment: AugmentParams = field(default_factory=AugmentParams)

    def __post_init__(self) -> None:
        if not isinstance(self.encoders, dict) or not self.encoders or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in self.encoders.items()):
            raise ConfigError(
                f"params.yaml: encoders must map each encoder to the frontend it reads, e.g. {{cnn: mel64}} (the "
                f"training stages iterate over it), got {self.encoders!r}; to choose encoders on the command line: "
                "dvc exp run -S '~encoders' -S '+encoders={cnn: mel64}'")

    def frontend(self, name: str) -> FrontendConfig:
        if name not in self.frontends:
            raise ConfigError(f"params.yaml: frontend {name!r} is not defined under frontends")
        return parse(FrontendConfig, self.frontends[name], f"frontends.{name}")

    def audio_encoder(self, name: str) -> AudioEncoderParams:
        """The settings of selected encoder ``name``: ``audio_encoders.<name>`` and its frontend from ``encoders``."""
        if name not in self.audio_encoders:
            raise ConfigError(
                f"params.yaml: encoder {name!r} is not defined under audio_encoders (known: "
                f"{sorted(self.audio_encoders)})"
            )
        if name not in self.encoders:
            raise ConfigError(f"params.yaml: encoder {name!r} is not selected in encoders {self.encoders}")
        entry = self.audio_encoders[name]
        if isinstance(entry, dict) and "frontend" in entry:
            raise ConfigError(f"params.yaml: audio_encoders.{name}.frontend is not read; an encoder's frontend "
                              f"is its value in encoders ({{{name}: {entry['frontend']}}})")
        return parse(AudioEncoderParams, {**entry, "frontend": self.encoders[name]}, f"audio_encoders.{name}")

    def loss_kwargs(self, name: str) -> dict:
        return dict(self.losses.get(name) or {})


class _Loader(yaml.SafeLoader):
    """SafeLoader that also reads ``2e-05`` as a float (YAML 1.2): ``dvc exp run -S x=2e-5`` writes that form,
    which PyYAML's YAML 1.1 rules would return as a string."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)


def load_params(path: str | Path = "params.yaml") -> dict:
    with open(path) as f:
        return yaml.load(f, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass


def training_params(raw: dict, path: str = "params.yaml") -> Params:
    """The sections the training stages read (other sections belong to other stages)."""
    keys = [f.name for f in dataclasses.fields(Params)]
    required = [f.name for f in dataclasses.fields(Params)
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    missing = [k for k in required if k not in raw]
    if missing:
        raise ConfigError(f"{path}: missing section(s) {missing}")
    return parse(Params, {k: raw[k] for k in keys if k in raw}, path)


# Top-level sections besides the training ones (Params): who reads them.
OTHER_SECTIONS = {"demo": "stage demo", "downloads": "stage download", "released": "stage release",
                  "data": "stages prepare and features", "evaluate": "stage evaluate",
                  "moments": "stages moments_demo and moments_evaluate"}
# The supervised objectives ``loss`` may name (salsa2.training.losses registry; distill is stage 2's L_dist).
SUPERVISED_LOSSES = ("nt_xent", "sigmoid", "listnet")


def _number(section: dict, key: str, where: str, low: float, high: float | None = None, *,
            integer: bool = False) -> None:
    if key not in section:
        return
    check_type(section[key], int if integer else float, f"{where}.{key}")
    if not _in_range(section[key], low, high, False):
        raise ConfigError(f"{where}.{key} is {section[key]!r}; it must be {_range_text(low, high, False)}")


def _section(raw: dict, name: str, path: str) -> dict:
    value = raw.get(name) or {}
    check_type(value, dict, f"{path}: {name}")
    return value


def check_params(raw: Any, path: str | Path = "params.yaml") -> Params:
    """Validate a whole params.yaml mapping before any stage works on it; return its training sections.

    Refused, in one line naming the key, its value and what is expected: an unknown top-level key (with the
    closest known one), a value of the wrong type (``epochs: three``) or out of range (``batch_size: 0``), an
    unknown ``loss``, a selected encoder or frontend that is not defined."""
    path = str(path)
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of sections, got {type(raw).__name__}")
    known = [f.name for f in dataclasses.fields(Params)] + list(OTHER_SECTIONS)
    for key in raw:
        if key not in known:
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"{path}: unknown top-level key {key!r}{hint} (known: {', '.join(sorted(known))})")
    params = training_params(raw, path)
    if params.loss not in SUPERVISED_LOSSES:
        close = difflib.get_close_matches(params.loss, SUPERVISED_LOSSES, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(f"{path}: loss is {params.loss!r}{hint}; choose one of {', '.join(SUPERVISED_LOSSES)}")
    for name in params.encoders:
        try:
            params.frontend(params.audio_encoder(name).frontend)
        except ConfigError as err:
            msg = str(err)
            raise ConfigError(msg if msg.startswith(path) else f"{path}: {msg}") from None
    data = _section(raw, "data", path)
    _number(data, "min_duration", f"{path}: data", 0)
    _number(data, "max_reject_share", f"{path}: data", 0, 1)
    demo = _section(raw, "demo", path)
    for key in ("n_train", "n_val", "n_test", "workers"):
        _number(demo, key, f"{path}: demo", 1, integer=True)
    _number(demo, "seed", f"{path}: demo", 0, integer=True)
    _number(_section(raw, "evaluate", path), "relevance_k", f"{path}: evaluate", 1, integer=True)
    _section(raw, "downloads", path)
    for name in _section(raw, "released", path):
        release_params(raw, name)
    moments_params(raw)
    return params
