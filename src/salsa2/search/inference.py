"""A trained checkpoint as an embedding function: audio files, waveforms or texts -> L2-normalised vectors.

Audio is embedded the way the model saw it in training (Primus et al. 2024, sec. 2, ``phi_a``): log-mels computed on the
fly with the model's own ``FrontendConfig``, each clip padded to a multiple of ``PAD_MULTIPLE`` frames (the
demo CNNs' squeeze-excitation averages over padding, so a clip's embedding must not depend on which other
clips share its batch: clips are batched only with clips of the same padded width). Long files are cut into
chunks (a multiple of the encoder's snippet length, so a ``SnippetEncoder`` still averages its 10 s snippets
exactly as on the whole file, Primus et al. 2024 4.2.1) whose pooled token sums are added up before the projection.
Texts are normalised as in training (``text_normalize`` in the checkpoint info) before the text encoder.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soxr
import torch
import torch.nn.functional as F

from salsa2.model.checkpoint import load_checkpoint
from salsa2.features.splits import PAD_MULTIPLE
from salsa2.audio.frontends import FrontendConfig, LogMel, compute_logmel
from salsa2.audio.logmel_stream import load_logmel
from salsa2.model.dual_encoder import DualEncoder
from salsa2.model.locate import find_checkpoint
from salsa2.data.text_norm import normalize_for_model, normalize_mode
from salsa2.utils.digest import files_digest

log = logging.getLogger(__name__)

CHUNK_SECONDS = 300.0  # files longer than this are encoded in chunks of about this length (bounds memory)
MEL_DTYPE = np.float16  # log-mels are embedded as the model saw them in training (the float16 cache); half the memory
MAX_BATCH_FRAMES = 16 * 3000  # frames per encoder call (16 clips of 30 s); equal-width clips only, so exact


def checkpoint_id(path: str | Path) -> str:
    """A content hash of a checkpoint (config.json + model.safetensors): an index remembers which model made it."""
    return files_digest([Path(path) / "config.json", Path(path) / "model.safetensors"], "sha1")[:16]


@dataclass
class SearchModel:
    """A loaded checkpoint plus what is needed to embed raw inputs the way it was trained.

    Attributes:
        name: the model's name in an index (its embedding column is ``emb/<name>``).
        path: the checkpoint directory.
        model: the dual encoder (eval mode, CPU).
        info: the checkpoint's config.json.
        model_id: ``checkpoint_id(path)``.
        normalize_text: the ``text.normalize`` mode the model was trained with (``salsa2.data.text_norm``).
    """

    name: str
    path: Path
    model: DualEncoder
    info: dict
    model_id: str
    normalize_text: str

    @property
    def frontend(self) -> FrontendConfig:
        return self.model.frontend

    @property
    def embed_dim(self) -> int:
        return self.model.cfg.embed_dim

    def describe(self) -> dict:
        """What an index stores about the model (JSON-serialisable)."""
        return {"path": str(self.path), "id": self.model_id, "embed_dim": self.embed_dim, "info": self.info}


def load_model(path: str | Path, name: str | None = None) -> SearchModel:
    """Load a checkpoint directory (model.safetensors + config.json), or a released model by its name
    (``models/released/<name>``, :func:`salsa2.model.locate.find_checkpoint`), for embedding and search."""
    path = find_checkpoint(path).resolve()
    model, info = load_checkpoint(path)
    if "text_normalize" not in info:
        log.info("%s: checkpoint does not record text.normalize; assuming true (the params.yaml default)", path)
    return SearchModel(
        name=name or path.name,
        path=path,
        model=model,
        info=info,
        model_id=checkpoint_id(path),
        normalize_text=normalize_mode(info.get("text_normalize", True)),
    )


# ------------------------------------------------------------------------------------------------- audio
def chunk_frames(model: SearchModel, seconds: float = CHUNK_SECONDS) -> int:
    """Frames per chunk of a long file: a multiple of PAD_MULTIPLE and of the encoder's snippet length."""
    unit = PAD_MULTIPLE
    snippet = getattr(model.model.audio_encoder, "snippet_frames", None)
    if snippet:
        unit = unit * int(snippet) // math.gcd(unit, int(snippet))
    wanted = int(seconds * model.frontend.frames_per_second)
    return max(1, -(-wanted // unit)) * unit


def split_frames(total: int, chunk: int, min_tail: int) -> list[tuple[int, int]]:
    """[start, end) chunks of ``chunk`` frames covering ``total``; a tail shorter than ``min_tail`` joins the last."""
    bounds = [(s, min(s + chunk, total)) for s in range(0, total, chunk)] or [(0, 0)]
    if len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] < min_tail:
        bounds[-2:] = [(bounds[-2][0], total)]
    return bounds


@torch.no_grad()
def embed_mels(model: SearchModel, mels: Sequence[np.ndarray], batch_size: int = 16,
               chunk_seconds: float = CHUNK_SECONDS) -> np.ndarray:
    """Log-mels (n_mels, T_i) -> (len(mels), D) L2-normalised audio embeddings.

    Equals ``model.encode_audio`` of each clip alone, padded to a multiple of PAD_MULTIPLE frames; clips
    longer than ``chunk_seconds`` are pooled over chunks (sum of weighted tokens / sum of weights).
    """
    dm = model.model
    dm.eval()
    chunk = chunk_frames(model, chunk_seconds)
    min_tail = int(model.frontend.frames_per_second)
    pieces: dict[int, list[tuple[int, np.ndarray]]] = defaultdict(list)  # padded width -> (clip, mel piece)
    for i, mel in enumerate(mels):
        if mel.ndim != 2 or mel.shape[0] != model.frontend.n_mels or mel.shape[1] == 0:
            raise ValueError(f"clip {i}: expected a ({model.frontend.n_mels}, T>0) log-mel, got {mel.shape}")
        tail = model.frontend.tail_frames  # frames past the audio (frontend.frames_past_end): only the file's last
        audio_end = mel.shape[1] - tail
        for s, e in split_frames(audio_end, chunk, min_tail):
            e += tail  # an inner chunk's "tail" is the following audio, as the frontend would have computed it
            width = -(-(e - s) // PAD_MULTIPLE) * PAD_MULTIPLE
            pieces[width].append((i, mel[:, s:e]))
    token_sum = torch.zeros(len(mels), dm.audio_encoder.out_dim)
    weight_sum = torch.zeros(len(mels))
    for width, group in sorted(pieces.items()):
        per_batch = max(1, min(batch_size, MAX_BATCH_FRAMES // width))  # long chunks go alone: bounded memory
        for s in range(0, len(group), per_batch):
            part = group[s : s + per_batch]
            batch = np.zeros((len(part), model.frontend.n_mels, width), dtype=np.float32)
            for j, (_, m) in enumerate(part):
                batch[j, :, : m.shape[1]] = m
            lengths = torch.tensor([m.shape[1] for _, m in part])
            tokens, weights = dm.audio_encoder(torch.from_numpy(batch), lengths)
            w = weights.to(tokens.dtype)
            idx = torch.tensor([i for i, _ in part])
            token_sum.index_add_(0, idx, (tokens * w[..., None]).sum(1).float())
            weight_sum.index_add_(0, idx, w.sum(1).float())
    pooled = token_sum / weight_sum.clamp_min(1e-12)[:, None]
    return F.normalize(dm.audio_proj(pooled), dim=-1).numpy().astype(np.float32)


def as_waveform(audio: np.ndarray, sample_rate: int, source_rate: int | None = None) -> np.ndarray:
    """A 1-D array at ``source_rate`` (default: ``sample_rate``) as a float32 waveform at ``sample_rate``."""
    wav = np.asarray(audio, dtype=np.float32)
    if wav.ndim != 1 or wav.size == 0:
        raise ValueError(f"expected a non-empty mono waveform (samples,), got shape {wav.shape}; mix channels first")
    if source_rate and source_rate != sample_rate:
        wav = soxr.resample(wav, source_rate, sample_rate, quality="HQ").astype(np.float32)
    return wav


def embed_audio(model: SearchModel, audio: Sequence[str | Path | np.ndarray] | str | Path | np.ndarray,
                sample_rate: int | None = None, batch_size: int = 16) -> np.ndarray:
    """(N, D) embeddings of audio files or mono waveforms (arrays at ``sample_rate``, default the model's).

    Raises:
        AudioReadError: a file cannot be decoded (the error names it and the reason).
    """
    items = [audio] if isinstance(audio, (str, Path)) or (isinstance(audio, np.ndarray) and audio.ndim == 1) \
        else list(audio)
    module = LogMel(model.frontend)  # files: decoded in blocks; arrays: rounded like the training cache
    mels = [load_logmel(a, model.frontend, module, dtype=MEL_DTYPE)[0] if isinstance(a, (str, Path))
            else compute_logmel(as_waveform(a, model.frontend.input_rate, sample_rate), model.frontend,
                                module).astype(MEL_DTYPE) for a in items]
    return embed_mels(model, mels, batch_size)


# -------------------------------------------------------------------------------------------------- text
@torch.no_grad()
def embed_text(model: SearchModel, texts: Sequence[str] | str, batch_size: int = 256) -> np.ndarray:
    """(N, D) L2-normalised caption/query embeddings (``phi_c``), normalised as in training."""
    texts = [texts] if isinstance(texts, str) else list(texts)
    if any(not str(t).strip() for t in texts):
        raise ValueError("empty query text; give a description such as 'a dog barks while cars pass'")
    texts = [normalize_for_model(t, model.normalize_text) for t in texts]
    model.model.eval()
    out = [model.model.encode_text(texts[s : s + batch_size]).float().numpy()
           for s in range(0, len(texts), batch_size)]
    return np.concatenate(out).astype(np.float32) if out else np.zeros((0, model.embed_dim), np.float32)
