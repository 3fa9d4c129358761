"""The authors' released PyTorch Lightning checkpoints, read safely and without holding them twice in memory.

OptimusPrimus/salsa publishes its PaSST + RoBERTa-large model as parts ``passt_roberta.{1..5}.ckpt`` that
``cat`` joins into one checkpoint (OptimusPrimus/salsa scripts/download_checkpoint.sh). The joined file is a
Lightning checkpoint in torch's zip format: ``state_dict``, optimizer states, lr schedulers, callbacks and
``hyper_parameters``, the sacred config the model was built from (``self.save_hyperparameters(kwargs)`` in
OptimusPrimus/salsa experiments/ex_dcase24.py). Its nested entries are sacred's ``ReadOnlyDict``/``ReadOnlyList``,
which pickle as ``ReadOnlyDict((plain_dict,))`` (``ReadOnlyContainer.__reduce__``, IDSIA/sacred
sacred/config/custom_containers.py), so ``torch.load(weights_only=True)`` refuses the file and a plain unpickle
needs sacred installed.

:func:`read_released` unpickles with an allowlist (tensors and what torch's rebuild functions need, plain
containers, numbers and strings; the two sacred containers become ``dict``/``list``), maps the file instead of
reading it, and keeps only ``state_dict`` and ``hyper_parameters``. torch.compile's ``_orig_mod.`` is taken out of
the keys (CPJKU/dcase2025_task6_baseline d25_t6/retrieval_module.py compiles the text model and
``audio_embedding_model.model.model`` before training).
"""

from __future__ import annotations

import builtins
import codecs
import collections
import pickle
import shutil
import struct
import types
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from salsa2.utils.errors import UserError
from salsa2.utils.fsutil import atomic_path

SACRED_CONTAINERS = "sacred.config.custom_containers"
COMPILE_PREFIX = "_orig_mod"  # torch.compile's wrapper attribute, a component of every key under a compiled module
_LOCAL_HEADER = struct.Struct("<4sHHHHHIIIHH")  # zip local file header (30 bytes)
_LOCAL_MAGIC = b"PK\x03\x04"
_COPY_CHUNK = 16 << 20


class ReleasedCheckpointError(UserError):
    """A released checkpoint (or one of its parts) that cannot be used: the message names the file and the fix."""


class ForbiddenGlobal(pickle.UnpicklingError):
    """The pickle asks for a global outside the allowlist (raised before anything of it is imported or called)."""

    def __init__(self, module: str, name: str) -> None:
        super().__init__(f"{module}.{name}")
        self.module, self.name = module, name


def _allowed_globals() -> dict[tuple[str, str], Any]:
    """``(module, name) -> object`` the unpickler may hand out; nothing else is ever imported."""
    allowed: dict[tuple[str, str], Any] = {
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("_codecs", "encode"): codecs.encode,  # how pickle protocol 2 writes bytes
        ("torch", "Size"): torch.Size,
        ("torch", "device"): torch.device,
        ("torch._utils", "_rebuild_tensor_v2"): torch._utils._rebuild_tensor_v2,
        ("torch._utils", "_rebuild_tensor_v3"): torch._utils._rebuild_tensor_v3,
        ("torch._utils", "_rebuild_parameter"): torch._utils._rebuild_parameter,
        (SACRED_CONTAINERS, "ReadOnlyDict"): dict,
        (SACRED_CONTAINERS, "ReadOnlyList"): list,
    }
    for name in ("set", "frozenset", "bytearray", "complex"):
        for module in ("builtins", "__builtin__"):  # protocol 2 writes the Python 2 name
            allowed[(module, name)] = getattr(builtins, name)
    for name in dir(torch):
        if isinstance(getattr(torch, name, None), torch.dtype):
            allowed[("torch", name)] = getattr(torch, name)
    return allowed


_ALLOWED = _allowed_globals()


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves globals only from the allowlist: no import, no call of anything else.

    torch.load subclasses it and answers ``torch.*Storage`` names itself (a dtype carrier, ``StorageType``); the
    tensors' bytes come through torch's ``persistent_load``."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise ForbiddenGlobal(module, name) from None


class OpaqueGlobal(dict):
    """Stands in for a class or function outside the allowlist (:class:`InertUnpickler`): built from the pickled
    arguments (``args``), items (the dict itself), list items (``items``) and state (``state``), so that nothing of
    the original is imported or run. A subclass per name carries ``module`` and ``name``."""

    module = name = ""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__()
        self.args, self.kwargs, self.items, self.state = args, kwargs, [], None

    def __setstate__(self, state) -> None:
        self.state = state

    def append(self, item) -> None:
        self.items.append(item)

    def extend(self, items) -> None:
        self.items.extend(items)

    def __repr__(self) -> str:
        return f"<opaque {self.module}.{self.name}>"

    __hash__ = object.__hash__


def _opaque(module: str, name: str) -> type[OpaqueGlobal]:
    return type(str(name), (OpaqueGlobal,), {"module": module, "name": name, "__module__": __name__})


class InertUnpickler(RestrictedUnpickler):
    """:class:`RestrictedUnpickler` that turns every global outside the allowlist into an inert
    :class:`OpaqueGlobal` instead of refusing it: for pinned third-party checkpoints whose extra entries
    (hyper-parameters, callback and scheduler states) may pickle any class; their tensors load as usual."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return super().find_class(module, name)
        except ForbiddenGlobal:
            return _opaque(module, name)


def _pickle_module(unpickler: type[pickle.Unpickler], name: str) -> types.ModuleType:
    """What torch.load's ``pickle_module`` needs: ``Unpickler`` (zip files) and ``load`` (legacy files)."""
    module = types.ModuleType(name)
    module.Unpickler = unpickler  # type: ignore[attr-defined]
    module.load = lambda file, **kwargs: unpickler(file, **kwargs).load()  # type: ignore[attr-defined]
    return module


restricted_pickle = _pickle_module(RestrictedUnpickler, "salsa2_restricted_pickle")
inert_pickle = _pickle_module(InertUnpickler, "salsa2_inert_pickle")


def check_container(path: str | Path, shown_as: str | Path | None = None) -> None:
    """Check that ``path`` is a whole torch zip checkpoint: the first local header at byte 0, the central directory
    where the end record says, every entry's local header (magic and name) at its recorded offset and its bytes
    inside the file, a ``data.pkl`` record. Parts joined in the wrong order or a truncated part fail here.

    Costs a few reads per tensor, not a pass over the data (CRCs are not checked: torch may skip them)."""
    path = Path(path)
    shown = Path(shown_as) if shown_as is not None else path
    size = path.stat().st_size
    try:
        with path.open("rb") as f:
            if f.read(4) != _LOCAL_MAGIC:
                raise zipfile.BadZipFile("it does not start with a zip local header (the first part is not first)")
            with zipfile.ZipFile(f) as zf:
                infos = zf.infolist()
                cd_start = getattr(zf, "start_dir", size)
            if not infos or min(i.header_offset for i in infos) != 0:
                raise zipfile.BadZipFile("the central directory does not describe the file from its first byte")
            if not any(i.filename.endswith("data.pkl") and i.filename.count("/") == 1 for i in infos):
                raise zipfile.BadZipFile("no <name>/data.pkl record")
            for info in infos:
                f.seek(info.header_offset)
                raw = f.read(_LOCAL_HEADER.size)
                if len(raw) != _LOCAL_HEADER.size:
                    raise zipfile.BadZipFile(f"record {info.filename} starts past the end")
                fields = _LOCAL_HEADER.unpack(raw)
                name_len, extra_len = fields[9], fields[10]
                if fields[0] != _LOCAL_MAGIC or f.read(name_len) != info.filename.encode():
                    raise zipfile.BadZipFile(f"record {info.filename} is not at its recorded offset")
                end = info.header_offset + _LOCAL_HEADER.size + name_len + extra_len + info.compress_size
                if end > cd_start:
                    raise zipfile.BadZipFile(f"record {info.filename} runs into the central directory")
    except (zipfile.BadZipFile, zipfile.LargeZipFile, struct.error, EOFError, ValueError) as err:
        reason = " ".join(str(err).split()) or type(err).__name__
        raise ReleasedCheckpointError(
            f"{shown} is not a readable PyTorch zip checkpoint ({reason}); if it was joined from parts, join them "
            "in order 1..N and download again any part whose size differs from the release"
        ) from None


def join_parts(parts: Sequence[str | Path], out: str | Path) -> Path:
    """Concatenate ``parts`` in the order given into ``out`` (what ``cat passt_roberta.*.ckpt > passt_roberta.ckpt``
    does, OptimusPrimus/salsa scripts/download_checkpoint.sh), atomically, and check the result is a whole zip
    checkpoint (:func:`check_container`). On any error nothing is written to ``out``."""
    out = Path(out)
    paths = [Path(p) for p in parts]
    if not paths:
        raise ReleasedCheckpointError(f"{out}: no parts given to join; pass the downloaded parts in order 1..N")
    for p in paths:
        if not p.is_file():
            raise ReleasedCheckpointError(f"{p}: checkpoint part missing; download it (all parts, in order 1..N)")
        if p.stat().st_size == 0:
            raise ReleasedCheckpointError(f"{p}: checkpoint part is empty; download it again")
        if p.resolve() == out.resolve():
            raise ReleasedCheckpointError(f"{out}: the joined file would overwrite part {p}; write it elsewhere")
    with atomic_path(out) as tmp:
        with tmp.open("wb") as dst:
            for p in paths:
                with p.open("rb") as src:
                    shutil.copyfileobj(src, dst, _COPY_CHUNK)
        check_container(tmp, shown_as=out)
    return out


def strip_compile_prefix(state_dict: dict[str, torch.Tensor], path: str | Path = "") -> dict[str, torch.Tensor]:
    """Keys without torch.compile's ``_orig_mod`` component (``text_embedding_model._orig_mod.x`` ->
    ``text_embedding_model.x``); two keys that become one are refused."""
    stripped: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        new = ".".join(part for part in key.split(".") if part != COMPILE_PREFIX)
        if new in stripped:
            raise ReleasedCheckpointError(f"{path}: keys {key!r} and another both become {new!r} without _orig_mod")
        stripped[new] = value
    return stripped


def read_released(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """``(state_dict, hyper_parameters)`` of a released Lightning checkpoint, tensors on the CPU.

    Unpickled with :class:`RestrictedUnpickler` (any global outside its allowlist is refused before it is
    imported), the file memory-mapped (a tensor's bytes are read when used, and once: the mapped file, not a copy),
    CUDA-saved tensors mapped to the CPU; optimizer states, schedulers, callbacks and loops are dropped; keys lose
    torch.compile's ``_orig_mod.``; sacred's read-only containers come back as ``dict``/``list``."""
    path = Path(path)
    if not path.is_file():
        raise ReleasedCheckpointError(f"{path}: checkpoint not found; download it (and join its parts) first")
    check_container(path)
    try:
        ckpt = torch.load(path, map_location="cpu", mmap=True, pickle_module=restricted_pickle, weights_only=False)
    except ForbiddenGlobal as err:
        raise ReleasedCheckpointError(
            f"{path}: refused to unpickle {err.module}.{err.name} (only tensors, plain containers, numbers and "
            "strings are allowed); use the checkpoint from the authors' release"
        ) from None
    except RuntimeError as err:
        if "pickle_module" in str(err):  # TORCH_FORCE_WEIGHTS_ONLY_LOAD forbids any unpickler but torch's own
            raise ReleasedCheckpointError(
                f"{path}: TORCH_FORCE_WEIGHTS_ONLY_LOAD is set, which refuses this reader's restricted unpickler "
                "(and this checkpoint's sacred config); unset it"
            ) from None
        reason = " ".join(str(err).split())
        raise ReleasedCheckpointError(f"{path}: not a loadable PyTorch checkpoint ({reason})") from err
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("state_dict"), dict):
        raise ReleasedCheckpointError(
            f"{path}: not a PyTorch Lightning checkpoint (no state_dict); use the .ckpt file of the release"
        )
    state_dict, hyper_parameters = ckpt["state_dict"], ckpt.get("hyper_parameters") or {}
    del ckpt  # optimizer states, lr schedulers, callbacks: unreferenced from here on
    bad = [k for k, v in state_dict.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        raise ReleasedCheckpointError(f"{path}: state_dict entry {bad[0]!r} is not a named tensor; not a model file")
    if not isinstance(hyper_parameters, dict):
        raise ReleasedCheckpointError(f"{path}: hyper_parameters is a {type(hyper_parameters).__name__}, not a dict")
    return strip_compile_prefix(state_dict, path), hyper_parameters
