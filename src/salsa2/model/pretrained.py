"""Pretrained checkpoints: fetched on first use into a cache directory, checked by sha256, then reused.

The cache is ``$SALSA2_WEIGHTS`` (default ``~/.cache/salsa2/weights``). Each file ``<name>`` sits next to
``<name>.sha256``. Downloads go through ``salsa2.utils.download`` (``<name>.part`` + HTTP Range: an interrupted
download resumes; the file appears at ``<name>`` only when complete). A checkpoint with a pinned ``sha256`` in
``PUBLISHED_WEIGHTS`` is verified against it; one without (the release pages publish none, and the repository was
written offline) records the digest of the first download ("trust on first use"), but only after the file loads as
a checkpoint, and every later load is verified against that record (a record of older versions, written before that
load check, is re-checked). Offline with an empty cache, ``fetch_weights`` raises ``WeightsUnavailable`` naming the
file, its address and where to put it.

Encoders take ``weights``: ``"pretrained"`` (this module), ``"none"`` (random initialisation, same
architecture; what the tests use) or a path to a local checkpoint file.
"""

from __future__ import annotations

import logging
import os
import pickle
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch

from salsa2.model.released import OpaqueGlobal, inert_pickle
from salsa2.utils.digest import file_digest
from salsa2.utils.download import DownloadError, download
from salsa2.utils.errors import UserError
from salsa2.utils.fsutil import atomic_path

log = logging.getLogger(__name__)
LOADED = "loaded"  # third field of a record written after the file was seen to load (older records lack it)


class WeightsUnavailable(UserError, RuntimeError):
    """A checkpoint that is missing, cannot be fetched or is not the published file; the message names the fix."""


@dataclass(frozen=True)
class PublishedWeights:
    """A published checkpoint: cache file name, download address, expected sha256 (None: record on fetch)."""

    filename: str
    url: str
    sha256: str | None = None
    note: str = ""


PUBLISHED_WEIGHTS: dict[str, PublishedWeights] = {
    # PaSST-S, no patch overlap (16x16 stride 16), AudioSet mAP .468 (Primus et al. 2024 4.2.1).
    "passt_s_p16_s16_128_ap468": PublishedWeights(
        "passt-s-f128-p16-s16-ap.468.pt",
        "https://github.com/kkoutini/PaSST/releases/download/v0.0.2-audioset/passt-s-f128-p16-s16-ap.468.pt",
    ),
    # EfficientAT MobileNetV3 width 4.0, AudioSet + ensemble KD ("ext"), mAP .487.
    "mn40_as_ext": PublishedWeights(
        "mn40_as_ext_mAP_487.pt",
        "https://github.com/fschmid56/EfficientAT/releases/download/v0.0.1/mn40_as_ext_mAP_487.pt",
    ),
    # ATST-Frame fine-tuned on AudioSet-2M (the checkpoint ATST-SED starts from); a Lightning checkpoint.
    "atst_as2M": PublishedWeights(
        "atst_as2M.ckpt",
        "https://drive.usercontent.google.com/download?id=1_xb0_n3UNbUG_pH1vLHTviLfsaSfCzxz&export=download&confirm=t",
        note="Google Drive file 1_xb0_n3UNbUG_pH1vLHTviLfsaSfCzxz, linked from github.com/Audio-WestlakeU/ATST-SED",
    ),
}


def cache_dir() -> Path:
    return Path(os.environ.get("SALSA2_WEIGHTS", Path.home() / ".cache" / "salsa2" / "weights"))


def _manual_hint(ck: PublishedWeights, target: Path) -> str:
    return (
        f"download {ck.url} {('(' + ck.note + ') ') if ck.note else ''}on a machine with internet and copy it to "
        f"{target} (or set $SALSA2_WEIGHTS to a folder holding {ck.filename}, or pass weights=<path to the file>)"
    )


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE") == "1" or os.environ.get("SALSA2_OFFLINE") == "1"


def _download(ck: PublishedWeights, target: Path) -> None:
    """Fetch ``ck`` to ``target`` with the resumable downloader (a broken transfer leaves ``<name>.part``, which the
    next call continues); a pinned sha256 is checked before the file appears at ``target``."""
    if _offline():
        raise WeightsUnavailable(f"{target} is missing and downloads are disabled; " + _manual_hint(ck, target))
    try:
        download(ck.url, target, sha256=ck.sha256, refuse_html=True)
    except DownloadError as err:
        raise WeightsUnavailable(f"cannot fetch {ck.filename} ({err}); " + _manual_hint(ck, target)) from None


def _check_pinned(ck: PublishedWeights, target: Path, digest: str) -> None:
    if digest != ck.sha256:
        raise WeightsUnavailable(f"{target} has sha256 {digest} but {ck.sha256} is pinned in salsa2.model.pretrained; "
                                 "delete the file to fetch it again, or " + _manual_hint(ck, target))


def _record_path(target: Path) -> Path:
    """The trust-on-first-use record ``<name>.sha256`` (``<sha256>  <name>  loaded``) next to a cached file."""
    return target.with_name(target.name + ".sha256")


def _trust_on_first_load(ck: PublishedWeights, target: Path, digest: str) -> None:
    """Check ``target`` against its record; without a verified one, record ``digest`` once the file loads."""
    record = _record_path(target)
    fields = record.read_text().split() if record.exists() else []
    recorded, trusted = (fields[0] if fields else None), fields[2:3] == [LOADED]
    if digest == recorded and trusted:
        return
    if recorded is not None and trusted:
        raise WeightsUnavailable(
            f"{target} has sha256 {digest} but {recorded} was recorded for it in {record} when it first loaded; "
            "delete the file to fetch it again, or " + _manual_hint(ck, target))
    load_state_dict(target, hint=_manual_hint(ck, target))  # never record a file that does not load
    if recorded is not None and digest != recorded:
        log.warning("%s: replacing the unverified sha256 record %s by %s (the file loads)", record, recorded, digest)
    with atomic_path(record) as tmp:
        tmp.write_text(f"{digest}  {ck.filename}  {LOADED}\n")


def fetch_weights(name: str) -> Path:
    """Path of checkpoint ``name`` in the cache, downloading it on first use and checking it on every use."""
    if name not in PUBLISHED_WEIGHTS:
        raise KeyError(f"unknown checkpoint {name!r}; known: {sorted(PUBLISHED_WEIGHTS)}")
    ck = PUBLISHED_WEIGHTS[name]
    target = cache_dir() / ck.filename
    if not target.exists():
        _download(ck, target)
    digest = file_digest(target)
    if ck.sha256:
        _check_pinned(ck, target, digest)
    else:
        _trust_on_first_load(ck, target, digest)
    return target


def resolve(weights: str, name: str) -> Path | None:
    """``weights`` setting -> checkpoint file: "none" -> None, "pretrained" -> ``fetch_weights(name)``,
    else a path."""
    if weights == "none":
        return None
    if weights == "pretrained":
        return fetch_weights(name)
    path = Path(weights)
    if not path.is_file():
        raise WeightsUnavailable(f"weights file {path} does not exist; use weights: pretrained | none | <file>")
    return path


def load_state_dict(path: Path, hint: str = "") -> dict[str, torch.Tensor]:
    """Tensors of a checkpoint file (a plain state_dict, or a Lightning-style dict holding ``state_dict``).

    A plain state dict loads with ``weights_only=True``; a Lightning checkpoint, whose hyper-parameters and callback
    states may pickle any class, with :data:`salsa2.model.released.inert_pickle`: tensors as usual, every class or
    function outside the allowlist an inert stand-in, so nothing named in the file is imported or run.

    A file that is no checkpoint (a web page, a truncated copy) raises ``WeightsUnavailable`` in one line naming
    the file and ``hint`` (the fix), not a bare UnpicklingError."""
    hint = hint or "give the checkpoint file itself (weights: pretrained | none | <file>)"
    try:
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError:  # Lightning checkpoints pickle hyper-parameters of any class: read them
            obj = torch.load(path, map_location="cpu", weights_only=False, pickle_module=inert_pickle)  # inertly
    except Exception as err:  # noqa: BLE001 - torch/pickle raise many types for a file that is no checkpoint
        reason = (str(err).strip().splitlines() or [type(err).__name__])[0][:120]
        raise WeightsUnavailable(
            f"{path} is not a PyTorch checkpoint ({type(err).__name__}: {reason}); {hint}") from None
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or isinstance(obj, OpaqueGlobal):
        raise WeightsUnavailable(f"{path} does not hold a state_dict (got {type(obj).__name__}); {hint}")
    bad = next((k for k, v in obj.items() if not isinstance(v, torch.Tensor)), None)
    if bad is not None:
        kind = type(obj[bad]).__name__
        raise WeightsUnavailable(f"{path}: state_dict entry {bad!r} is a {kind}, not a tensor; {hint}")
    return obj


def copy_into_cache(src: str | Path, name: str) -> Path:
    """Place a hand-downloaded checkpoint where ``fetch_weights(name)`` looks for it."""
    target = cache_dir() / PUBLISHED_WEIGHTS[name].filename
    with atomic_path(target) as tmp:
        shutil.copyfile(src, tmp)
    return target
