"""ATST-Frame (Li et al. 2023), the architecture of the released ``atst_as2M`` checkpoint (ATST-SED).

A 12-layer ViT-Base (768-d, 12 heads, no qkv bias, LayerNorm eps 1e-6) over the 64-bin 16 kHz mel
spectrogram; each token is a 64 x 4 patch (all bins, four 10 ms frames), learned positional embeddings for
250 tokens (10 s). Primus et al. 2024 (sec. 4.2.1) cuts longer inputs into non-overlapping 10 s snippets
(``SnippetEncoder``);
as in the authors' code (OptimusPrimus/salsa ``models/audio/atst.py`` + ``experiments/ex_dcase24.py``
``forward_audio``) every snippet is completed to 10 s with silence, the transformer attends over all 250
tokens of a snippet (``mask_padding: false``) and the clip embedding is the mean over all valid frame tokens
of all snippets (``pool: token``). Tymofieiev 2025 trains it at its own lower learning rate and warps frequencies;
the authors' wrapper computes the warp and discards it, so ``freq_warp`` defaults to 0 (``FREQ_WARP``), as the
paper preset sets it.
The module names mirror ATST-SED's ``FrameAST`` so the checkpoint loads strictly
(``tests/fixtures/atst_frame_keys.json`` lists the reference keys and shapes).

Frontend (``mel64_atst`` in params.yaml): torchaudio ``MelSpectrogram(16000, n_fft=1024, win_length=1024,
hop_length=160, f_min=60, f_max=7800, n_mels=64)`` (HTK, periodic Hann), stored as ln(mel + 1e-10); the
encoder turns it into ATST's input (``prepare``, on the whole clip): dB (10 log10), floor at 80 dB below the
clip's maximum, clamp to [-50, 80] dB, then min-max scaling with the checkpoint's constants (-79.6482,
50.6842) to [-1, 1]; silence past the clip's end gets the floor, as zero samples do in the reference.
(The reference's ``AmplitudeToDB`` takes the maximum over its whole batch; salsa2 takes the clip's, what
the reference computes for a clip alone.) ``mask_padding: true`` masks padded tokens out of the attention.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from salsa2.model import pretrained
from salsa2.model.encoders import AUDIO_ENCODERS
from salsa2.model.encoders.base import AudioEncoder, SnippetEncoder, lengths_to_mask
from salsa2.audio.frontends import FrontendConfig

DB_MIN, DB_MAX = -79.6482, 50.6842  # ATST's MinMax scaler constants
# Defaults of the authors' pipeline, shared by FrameAST and the atst_frame builder.
DROP_PATH = 0.0
FREQ_WARP = 0.0  # the authors' wrapper computes the warp and discards it: no warping
MASK_PADDING = False  # the reference attends over the silent tokens of a snippet


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, key_mask: torch.Tensor | None) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        mask = None if key_mask is None else key_mask[:, None, None, :]
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.proj(y.transpose(1, 2).reshape(b, n, d))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(norm1 x); x + mlp(norm2 x); stochastic depth in training."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float = 4.0, drop_path: float = 0.0) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.drop_path = drop_path

    def _drop(self, y: torch.Tensor) -> torch.Tensor:
        if not self.training or self.drop_path == 0.0:
            return y
        keep = 1.0 - self.drop_path
        return y * torch.bernoulli(torch.full((y.shape[0], 1, 1), keep, device=y.device)) / keep

    def forward(self, x: torch.Tensor, key_mask: torch.Tensor | None) -> torch.Tensor:
        x = x + self._drop(self.attn(self.norm1(x), key_mask))
        return x + self._drop(self.mlp(self.norm2(x)))


class PatchEmbed(nn.Module):
    """(B, 1, F, T) -> (B, T // w, dim): each token is a linear map of one F x w patch, flattened (f, t)."""

    def __init__(self, n_mels: int, width: int, dim: int) -> None:
        super().__init__()
        self.n_mels, self.width = n_mels, width
        self.patch_embed = nn.Linear(n_mels * width, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, f, t = x.shape
        n = t // self.width
        patches = x[:, 0, :, : n * self.width].reshape(b, f, n, self.width).permute(0, 2, 1, 3)
        return self.patch_embed(patches.reshape(b, n, f * self.width))


def frequency_warp(spec: torch.Tensor, max_drop: float) -> torch.Tensor:
    """Tymofieiev 2025's frequency warping, as ATST's ``RandomResizeCrop(freq_scale=(1 - max_drop, 1))``: per example
    a band of ``h`` of F bins, h = floor(u F), u ~ U[1 - max_drop, 1], starting at a random bin
    (uniform in 0 .. F - h), stretched back to F bins (bicubic, align_corners). ``spec``: (B, F, T)."""
    b, f, t = spec.shape
    out = torch.empty_like(spec)
    for i in range(b):
        h = int(min(f, max(1, math.floor(f * (1.0 - max_drop * torch.rand(()).item())))))
        lo = int(torch.randint(0, f - h + 1, ()).item())
        crop = spec[i, lo : lo + h][None, None]
        out[i] = F.interpolate(crop, size=(f, t), mode="bicubic", align_corners=True)[0, 0] if h < f else spec[i]
    return out


class FrameAST(AudioEncoder):
    """ATST-Frame backbone for one snippet of at most ``max_frames`` frames -> (B, T/4, 768) frame tokens."""

    def __init__(self, frontend: FrontendConfig, dim: int = 768, depth: int = 12, heads: int = 12,
                 patch_frames: int = 4, max_frames: int = 1001, drop_path: float = DROP_PATH,
                 freq_warp: float = FREQ_WARP, mask_padding: bool = MASK_PADDING) -> None:
        super().__init__()
        self.mask_padding = mask_padding
        self.frontend = frontend
        self.out_dim = dim
        self.patch_frames = patch_frames
        self.max_tokens = max_frames // patch_frames
        self.freq_warp = freq_warp
        self.patch_embed = PatchEmbed(frontend.n_mels, patch_frames, dim)
        self.mask_embed = nn.Parameter(torch.zeros(1, 1, dim))  # pre-training only; kept for the checkpoint
        self.pos_embed = nn.Parameter(torch.zeros(1, self.max_tokens + 1, dim))
        rates = torch.linspace(0, drop_path, depth).tolist()
        self.blocks = nn.ModuleList([Block(dim, heads, drop_path=r) for r in rates])
        self.norm_frame = nn.LayerNorm(dim, eps=1e-6)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.trunc_normal_(self.mask_embed, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def prepare(self, mel: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Stored ln-mel of whole clips -> ATST's input scale ([-1, 1] for -79.6 .. 50.7 dB) and the (B, 1, 1)
        value of silence past each clip's end (its dB floor: clamp(max - 80, -50, 80))."""
        valid = lengths_to_mask(lengths, mel.shape[-1])[:, None, :]
        db = mel.float() * (10.0 / math.log(10.0))
        top = db.masked_fill(~valid, -math.inf).amax(dim=(1, 2), keepdim=True)
        db = torch.maximum(db, top - 80.0).clamp(-50.0, 80.0)
        fill = (top - 80.0).clamp(-50.0, 80.0)
        db = torch.where(valid, db, fill)
        return self._minmax(db), self._minmax(fill)

    @staticmethod
    def _minmax(db: torch.Tensor) -> torch.Tensor:
        return (db - DB_MIN) / (DB_MAX - DB_MIN) * 2.0 - 1.0

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``x``: a ``prepare``d snippet (B, F, T <= 1000) whose first ``lengths`` frames are valid."""
        if self.training and self.freq_warp > 0:
            x = frequency_warp(x, self.freq_warp)
        t = min(x.shape[-1], self.max_tokens * self.patch_frames)
        t = max(t, self.patch_frames)
        if x.shape[-1] < t:
            x = F.pad(x, (0, t - x.shape[-1]), value=-1.0)
        tokens = self.patch_embed(x[:, None, :, :t])
        n = tokens.shape[1]
        tokens = tokens + self.pos_embed[:, 1 : n + 1]
        n_valid = (lengths // self.patch_frames).clamp(1, n)
        mask = lengths_to_mask(n_valid, n)
        for blk in self.blocks:
            tokens = blk(tokens, mask if self.mask_padding else None)
        return self.norm_frame(tokens), mask.float()

    def load_checkpoint(self, path) -> None:
        self.load_state_dict(atst_state_dict(pretrained.load_state_dict(path)), strict=True)


def atst_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Key mapping of ATST-SED's loader: the frame encoder's weights from an ATST / ATST-C2F / Lightning
    checkpoint (``encoder.encoder.*``, ``encoder.encoder.frame_encoder.*`` or ``model.teacher.encoder.*``);
    already-mapped state_dicts pass through."""
    out: dict[str, torch.Tensor] = {}
    for k, v in state.items():
        if "model.teacher.encoder." in k:
            if "cls_token" in k:
                continue
            out[k.replace("model.teacher.encoder.norm", "norm_frame") if "encoder.norm." in k
                else k.replace("model.teacher.encoder.", "")] = v
        elif "encoder.encoder.frame_encoder." in k:
            out[k.replace("encoder.encoder.frame_encoder.", "")] = v
        elif "encoder.encoder.teacher_module." in k:
            continue
        elif "encoder.encoder." in k:
            out[k.replace("encoder.encoder.", "")] = v
    return out or dict(state)


@AUDIO_ENCODERS.register("atst_frame")
def build_atst_frame(frontend: FrontendConfig, weights: str = "pretrained", snippet_seconds: float = 10.0,
                     drop_path: float = DROP_PATH, freq_warp: float = FREQ_WARP, mask_padding: bool = MASK_PADDING,
                     pool: str = "token") -> AudioEncoder:
    """ATST-Frame with the ``atst_as2M`` weights on 10 s snippets completed with silence.

    ``freq_warp``: frequency warping in training (none by default, as the authors' pipeline); ``mask_padding``: mask
    silent tokens out of the attention (the reference attends over them); ``pool``: ``token`` (all valid tokens, the
    authors') or ``snippet`` (equal weight per snippet)."""
    backbone = FrameAST(frontend, drop_path=drop_path, freq_warp=freq_warp, mask_padding=mask_padding)
    path = pretrained.resolve(weights, "atst_as2M")
    if path is not None:
        backbone.load_checkpoint(path)
    frames = int(round(snippet_seconds * frontend.frames_per_second))
    frames = min(frames, backbone.max_tokens * backbone.patch_frames)
    return SnippetEncoder(backbone, frames, min_snippet_frames=backbone.patch_frames, pool=pool)
