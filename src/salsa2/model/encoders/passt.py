"""PaSST-S without patch overlap (``passt_s_p16_s16_128_ap468``), through the hear21passt package.

Primus et al. 2024 (sec. 4.2.1): PaSST on 32 kHz audio, 128 Kaldi mel bins (frontend ``kaldi128``), 16 x 16 patches with
stride 16 (8 frequency x 62 time patches for 10 s), structured patchout of 2 frequency rows and 15 time
columns during training only, inputs cut into non-overlapping 10 s snippets whose embeddings are averaged.

hear21passt is installed without dependencies (``requirements-nodeps.txt``): it declares timm and
torchaudio, which break with the CPU torch here. Its model code needs only
``timm.models._hub.download_cached_file``, so a stand-in module is registered before importing it; weights
come from ``salsa2.model.pretrained`` instead. ``output``: ``embedding`` = one token per snippet, the mean of the
class and distillation tokens (the package's ``features``, what the paper pools); ``frames`` = one token
per time patch (patch tokens averaged over frequency). As in the authors' code (OptimusPrimus/salsa
``models/audio/base.py``: waveforms zero-padded to whole 10 s snippets), every snippet is completed to 10 s
with the log-mel of silence (the transformer has no attention mask), so a clip's embedding does not depend
on its batch.
"""

from __future__ import annotations

import contextlib
import io
import math
import sys
import types
import warnings

import torch
from torch import nn

from salsa2.model import pretrained
from salsa2.model.encoders import AUDIO_ENCODERS
from salsa2.model.encoders.base import AudioEncoder, SnippetEncoder, lengths_to_mask
from salsa2.utils.errors import UserError
from salsa2.audio.frontends import FrontendConfig


class PasstUnavailable(UserError, ImportError):
    pass


def _timm_stand_in() -> None:
    """Register ``timm.models._hub.download_cached_file`` unless a real timm is importable."""
    try:
        import timm.models._hub  # noqa: F401
        return
    except ImportError:
        pass

    def download_cached_file(*_args, **_kwargs):
        raise RuntimeError("salsa2 loads PaSST weights through salsa2.model.pretrained (pretrained=False here)")

    names = ("timm", "timm.models", "timm.models._hub")
    mods = {n: sys.modules.get(n) or types.ModuleType(n) for n in names}
    mods["timm"].models = mods["timm.models"]
    mods["timm.models"]._hub = mods["timm.models._hub"]
    mods["timm.models._hub"].download_cached_file = download_cached_file
    sys.modules.update(mods)


def passt_module():
    """The ``hear21passt.models.passt`` module (imported with the timm stand-in)."""
    _timm_stand_in()
    try:
        from hear21passt.models import passt
    except ImportError as err:
        raise PasstUnavailable(
            "the PaSST encoder needs hear21passt: pip install --no-deps -r requirements-nodeps.txt"
        ) from err
    passt.first_RUN = False  # silence its first-forward shape prints
    return passt


class PaSST(AudioEncoder):
    """One <= 10 s snippet (B, 128, T <= 1000) -> (B, 1, 768) embedding token or (B, T/16, 768) frame tokens.

    Built by ``build_passt``, whose arguments and defaults these are (``input_frames``: frames of one snippet)."""

    def __init__(self, frontend: FrontendConfig, arch: str, patchout_f: int, patchout_t: int, input_frames: int,
                 output: str) -> None:
        super().__init__()
        if output not in ("embedding", "frames"):
            raise ValueError(f"output must be 'embedding' or 'frames', got {output!r}")
        passt = passt_module()
        with contextlib.redirect_stdout(io.StringIO()):
            self.net = passt.get_model(arch=arch, pretrained=False, fstride=16, tstride=16,
                                       input_fdim=frontend.n_mels, input_tdim=input_frames,
                                       s_patchout_t=patchout_t, s_patchout_f=patchout_f)
        self.frontend = frontend
        self.out_dim = int(self.net.embed_dim)
        self.output = output
        self.patch = 16
        self.patchout_t = patchout_t
        self.max_frames = self.net.patch_embed.grid_size[1] * self.patch
        self.input_frames = input_frames

    def _input(self, mel: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        # always the full snippet (input_frames, 10 s): the valid frames, then silence (seed code's zero padding)
        t = self.input_frames
        if mel.shape[-1] < t:
            mel = nn.functional.pad(mel, (0, t - mel.shape[-1]), value=math.log(self.frontend.log_offset))
        mel = mel[..., :t].float()  # frames past the audio: silence (or tail frames), set by SnippetEncoder
        return ((mel - self.frontend.norm_mean) / self.frontend.norm_std)[:, None]

    def forward(self, mel: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self._input(mel, lengths)
        n_time = x.shape[-1] // self.patch
        # Structured patchout keeps at least one time column on short inputs.
        self.net.s_patchout_t = min(self.patchout_t, n_time - 1)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Input image size")  # shorter than 10 s is fine
            if self.output == "frames":
                return self._frames(x, lengths)
            _, features = self.net(x)
        return features[:, None], features.new_ones(features.shape[0], 1)

    def _frames(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Patch tokens averaged over frequency; with time patchout, the kept columns (all weighted 1)."""
        captured = {}
        hook = self.net.norm.register_forward_hook(lambda _m, _i, out: captured.setdefault("x", out))
        try:
            self.net(x)
        finally:
            hook.remove()
        seq = captured["x"][:, 2:]  # drop the class and distillation tokens
        b, d = seq.shape[0], seq.shape[-1]
        n_freq = self.net.patch_embed.grid_size[0] - (self.net.s_patchout_f if self.training else 0)
        cols = seq.shape[1] // n_freq
        tokens = seq.reshape(b, n_freq, cols, d).mean(1)
        if self.training and self.net.s_patchout_t:
            return tokens, tokens.new_ones(b, cols)
        n = ((lengths + self.patch - 1) // self.patch).clamp(1, cols)
        return tokens, lengths_to_mask(n, cols).float()

    def load_checkpoint(self, path) -> None:
        self.net.load_state_dict(pretrained.load_state_dict(path), strict=True)


@AUDIO_ENCODERS.register("passt")
def build_passt(frontend: FrontendConfig, weights: str = "pretrained", arch: str = "passt_s_p16_s16_128_ap468",
                patchout_f: int = 2, patchout_t: int = 15, snippet_seconds: float = 10.0,
                output: str = "embedding", min_snippet_frames: int | None = None) -> AudioEncoder:
    """PaSST-S (no overlap) with its AudioSet weights on 10 s snippets averaged; patchout in training only.

    ``min_snippet_frames``: a clip's last snippet counts only with at least this many frames of audio (None: one
    16-frame patch). 1 counts every started snippet, as the authors' mask of the first ceil(fraction x 3) snippets
    of a 30 s clip (OptimusPrimus/salsa experiments/ex_dcase24.py ``forward_audio``)."""
    frames = int(round(snippet_seconds * frontend.frames_per_second))
    backbone = PaSST(frontend, arch=arch, patchout_f=patchout_f, patchout_t=patchout_t, input_frames=frames,
                     output=output)
    path = pretrained.resolve(weights, arch)
    if path is not None:
        backbone.load_checkpoint(path)
    minimum = backbone.patch if min_snippet_frames is None else min_snippet_frames
    return SnippetEncoder(backbone, frames, min_snippet_frames=minimum)
