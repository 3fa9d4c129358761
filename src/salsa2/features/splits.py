"""A split's clips, captions and cached features, and the batches training draws from them."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Iterator

import numpy as np
import torch

from salsa2.features.logmel_cache import SpectrogramCache
from salsa2.audio.frontends import FrontendConfig
from salsa2.data.tables import read_tables
from salsa2.data.text_norm import normalize_for_model, normalize_mode

log = logging.getLogger(__name__)
PAD_MULTIPLE = 128  # pad batches to a multiple of this many frames: fewer distinct shapes, steadier memory
# Training batches of an encoder that declares ``pad_multiple`` (its stride / token stack) are padded to a multiple
# of lcm(that, PAD_BUCKET): less padding than 128 frames, yet few distinct shapes (a new length every batch grows
# the CPU allocator's cache).
PAD_BUCKET = 32
# Training batches hold clips of similar lengths: each epoch's shuffled order is sorted by length in chunks of this
# many batches, whose batches are then shuffled. On the demo 16 leaves about 11 % of the frames padding (8: 16 %),
# with the same batches per epoch.
SORT_CHUNK = 16


@dataclass
class RetrievalData:
    """Clips (``audio_ids``) and captions (``caption_ids``, ``texts``, ``caption_audio`` = index of the clip)."""

    audio_ids: list[str]
    caption_ids: list[str]
    texts: list[str]
    caption_audio: np.ndarray
    cache: SpectrogramCache | None

    @property
    def caption_audio_ids(self) -> list[str]:
        return [self.audio_ids[i] for i in self.caption_audio]

    def captions_of(self) -> list[np.ndarray]:
        """For each clip, the indices of its captions."""
        order = np.argsort(self.caption_audio, kind="stable")
        bounds = np.searchsorted(self.caption_audio[order], np.arange(len(self.audio_ids) + 1))
        return [order[bounds[i] : bounds[i + 1]] for i in range(len(self.audio_ids))]

    def frames(self) -> np.ndarray:
        assert self.cache is not None
        return np.array([self.cache.frames(a) for a in self.audio_ids])

    def mel(self, i: int) -> np.ndarray:
        assert self.cache is not None
        return self.cache.get(self.audio_ids[i])


def load_split(
    data_dir: str | Path,
    split: str | list[str],
    features_dir: str | Path | None = None,
    frontend: FrontendConfig | None = None,
    normalize_text: bool | str = False,
) -> RetrievalData:
    """Clips of ``split`` that have features (clips rejected by feature extraction are left out, logged).

    ``normalize_text``: a ``text.normalize`` mode (``salsa2.data.text_norm``) applied to the captions.
    """
    audio, captions = read_tables(data_dir)
    splits = [split] if isinstance(split, str) else list(split)
    audio = audio[audio["split"].isin(splits)]
    cache = SpectrogramCache(features_dir, expect=frontend) if features_dir is not None else None
    if cache is not None:
        have = audio["audio_id"].isin(cache.ids())
        if not have.all():
            log.warning("%d clips of %s have no features (see %s/rejects.csv)", int((~have).sum()), split, features_dir)
        audio = audio[have]
    audio_ids = audio["audio_id"].tolist()
    position = {a: i for i, a in enumerate(audio_ids)}
    captions = captions[captions["audio_id"].isin(position)].sort_values(["audio_id", "index"], kind="stable")
    texts = captions["text"].tolist()
    if normalize_mode(normalize_text) != "none":
        texts = [normalize_for_model(t, normalize_text) for t in texts]
    return RetrievalData(
        audio_ids=audio_ids,
        caption_ids=captions["caption_id"].tolist(),
        texts=texts,
        caption_audio=np.array([position[a] for a in captions["audio_id"]], dtype=np.int64),
        cache=cache,
    )


def crop_frames(frontend: FrontendConfig, max_seconds: float) -> int:
    """The training crop (``stage.max_seconds``) in frames: those of a ``max_seconds`` clip as ``frontend`` stores it,
    tail frames included (0: no crop). A clip of exactly ``max_seconds`` is never cropped; a longer one gets a
    window of the same frames, as the authors crop the waveform to 30 s (OptimusPrimus/salsa
    ``FixedLengthAudio``: a uniform random offset)."""
    if max_seconds < 0:
        raise ValueError(f"max_seconds must be >= 0 (0: whole clips), got {max_seconds}")
    return frontend.num_frames(round(max_seconds * frontend.sample_rate)) if max_seconds else 0


def collate_mels(mels: list[np.ndarray], max_frames: int = 0, rng: np.random.Generator | None = None,
                 pad_multiple: int = PAD_MULTIPLE):
    """Pad (n_mels, T_i) arrays into (B, n_mels, T) float32 and (B,) lengths; T a multiple of ``pad_multiple``
    (training: the encoder's ``pad_multiple``, see ``pad_multiple_of``).

    With ``max_frames`` > 0, longer clips are cropped to a random (``rng``) or the first window.
    """
    crops = []
    for m in mels:
        if max_frames and m.shape[1] > max_frames:
            start = int(rng.integers(0, m.shape[1] - max_frames + 1)) if rng is not None else 0
            m = m[:, start : start + max_frames]
        crops.append(m)
    lengths = np.array([m.shape[1] for m in crops])
    width = int(-(-lengths.max() // pad_multiple) * pad_multiple)
    out = np.zeros((len(crops), crops[0].shape[0], width), dtype=np.float32)
    for i, m in enumerate(crops):
        out[i, :, : m.shape[1]] = m
    return torch.from_numpy(out), torch.from_numpy(lengths)


def pad_multiple_of(encoder) -> int:
    """Frames a training batch of ``encoder`` is padded to a multiple of (PAD_MULTIPLE if it declares nothing)."""
    need = getattr(encoder, "pad_multiple", None)
    return math.lcm(int(need), PAD_BUCKET) if need else PAD_MULTIPLE


@dataclass
class Batch:
    """Clip indices (A,), caption indices (T,) and the (A, T) positive mask by clip identity."""

    audio: np.ndarray
    captions: np.ndarray
    positives: torch.Tensor


def _bucketed(order: np.ndarray, frames: np.ndarray, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Split a shuffled order into batches of similar lengths (sorted within chunks of SORT_CHUNK batches)."""
    chunk = batch_size * SORT_CHUNK
    batches = []
    for s in range(0, len(order), chunk):
        part = order[s : s + chunk]
        part = part[np.argsort(frames[part], kind="stable")]
        batches += [part[i : i + batch_size] for i in range(0, len(part), batch_size)]
    rng.shuffle(batches)
    return batches


def iterate_batches(
    data: RetrievalData, batch_size: int, layout: str, rng: np.random.Generator
) -> Iterator[Batch]:
    """One epoch of batches.

    ``clips``: every clip once, with all its captions. ``pairs``: every caption once, with its clip (a clip may
    appear twice in a batch; both copies are positives of its captions).
    """
    frames = data.frames()
    if layout == "clips":
        caps_of = data.captions_of()
        for clip_idx in _bucketed(rng.permutation(len(data.audio_ids)), frames, batch_size, rng):
            caps = np.concatenate([caps_of[i] for i in clip_idx])
            positives = torch.from_numpy(clip_idx[:, None] == data.caption_audio[caps][None, :])
            yield Batch(clip_idx, caps, positives)
    elif layout == "pairs":
        cap_frames = frames[data.caption_audio]
        for caps in _bucketed(rng.permutation(len(data.caption_ids)), cap_frames, batch_size, rng):
            clip_idx = data.caption_audio[caps]
            positives = torch.from_numpy(clip_idx[:, None] == clip_idx[None, :])
            yield Batch(clip_idx, caps, positives)
    else:
        raise ValueError(f"layout must be 'clips' or 'pairs', got {layout!r}")


def num_batches(data: RetrievalData, batch_size: int, layout: str) -> int:
    """Batches of an epoch: every sorting chunk is a whole number of batches, so only the last one can be short."""
    n = len(data.audio_ids) if layout == "clips" else len(data.caption_ids)
    return -(-n // batch_size)
