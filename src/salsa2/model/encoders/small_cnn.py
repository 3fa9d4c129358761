"""Small MobileNetV3-style CNNs (inverted residuals, squeeze-excitation, hard-swish) for the demo.

Same family as EfficientAT's MobileNetV3 (Primus et al. 2024, "MN"), scaled down so that they train in seconds per
epoch on two CPU cores. Both handle any input length; their output tokens are time steps, 16x coarser than
the input frames.

- ``small_mobilenet2d``: 2D convolutions over (frequency, time), as MobileNetV3 itself (~0.1 M params).
- ``small_mobilenet1d``: the same blocks as 1D convolutions over time with the mel bins as input channels
  (time-channel separable); several times faster on a CPU for equal quality, the demo's default. With
  ``channels_last=True`` the same convolutions run as 2D ones of height 1 in channels-last memory format
  (identical weights up to a unit axis, faster steps on a CPU); such a model also loads the weights of one
  built without it.

Padding never reaches a valid output: every convolution wider than one frame reads zeros past the clip's
end (the input of each such convolution is re-masked) and squeeze-excitation averages over valid frames
only, so a clip's tokens are those of the clip alone, whatever its batch.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from salsa2.model.encoders import AUDIO_ENCODERS
from salsa2.model.encoders.base import AudioEncoder, lengths_to_mask
from salsa2.audio.frontends import FrontendConfig


# Defaults shared by SmallMobileNet and its builders.
WIDTH = 1.0
OUT_DIM = 256
KERNEL = {2: 3, 1: 5}  # convolution kernel of each variant (``dims``)
CHANNELS_LAST = False


def conv_ops(dims: int, flat: bool = False) -> tuple:
    """(conv, norm) constructors: 2D, 1D, or (``flat``) a 1D convolution over time as a Conv2d on (B, C, 1, T)."""
    if not flat:
        return (nn.Conv2d, nn.BatchNorm2d) if dims == 2 else (nn.Conv1d, nn.BatchNorm1d)

    def conv(cin: int, cout: int, kernel: int, stride: int = 1, padding: int = 0, groups: int = 1,
             bias: bool = True) -> nn.Conv2d:
        return nn.Conv2d(cin, cout, (1, kernel), (1, stride), (0, padding), groups=groups, bias=bias)

    return conv, nn.BatchNorm2d


class SqueezeExcite(nn.Module):
    def __init__(self, channels: int, dims: int = 2, reduction: int = 4, flat: bool = False) -> None:
        super().__init__()
        conv = conv_ops(dims, flat)[0]
        hidden = max(8, channels // reduction)
        self.fc = nn.Sequential(
            conv(channels, hidden, 1), nn.ReLU(inplace=True), conv(hidden, channels, 1), nn.Hardsigmoid()
        )
        self.axes = tuple(range(2, 2 + (2 if flat else dims)))

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """``mask``: (B, T) valid time steps (last axis), or None for all."""
        if mask is None:
            return x * self.fc(x.mean(dim=self.axes, keepdim=True))
        m = mask[:, None, None, :] if len(self.axes) == 2 else mask[:, None, :]
        m = m.to(x.dtype)
        total = m.sum(dim=self.axes, keepdim=True) * (x.shape[2] if len(self.axes) == 2 else 1)
        return x * self.fc((x * m).sum(dim=self.axes, keepdim=True) / total.clamp_min(1.0))


def masked_layers(layers: Iterable[nn.Module], x: torch.Tensor,
                  lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Run ``layers`` on (B, C, [F,] T) with ``lengths`` valid time steps: the input of every convolution wider
    than one step is zero past the valid length, squeeze-excitation pools valid steps; strided convolutions
    (padding k // 2) map L valid steps to ceil(L / stride). Returns the output and its valid lengths."""
    for layer in layers:
        if isinstance(layer, (nn.Conv1d, nn.Conv2d)) and layer.kernel_size[-1] > 1:
            keep = lengths_to_mask(lengths, x.shape[-1]).to(x.dtype)
            x = x * (keep[:, None, None, :] if x.dim() == 4 else keep[:, None, :])
            x = layer(x)
            stride = layer.stride[-1]
            lengths = (lengths + stride - 1) // stride
        elif isinstance(layer, SqueezeExcite):
            x = layer(x, lengths_to_mask(lengths, x.shape[-1]))
        elif isinstance(layer, InvertedResidual):
            x, lengths = layer.masked(x, lengths)
        elif isinstance(layer, nn.Sequential):
            x, lengths = masked_layers(layer, x, lengths)
        else:
            x = layer(x)
    return x, lengths


class InvertedResidual(nn.Module):
    """1x1 expand -> depthwise k (stride) -> SE -> 1x1 project, with a skip when shapes allow (1D or 2D)."""

    def __init__(self, cin: int, cout: int, expand: int, stride: int, kernel: int = 3, se: bool = True,
                 dims: int = 2, flat: bool = False) -> None:
        super().__init__()
        conv, norm = conv_ops(dims, flat)
        hidden = cin * expand
        layers: list[nn.Module] = []
        if expand != 1:
            layers += [conv(cin, hidden, 1, bias=False), norm(hidden), nn.Hardswish()]
        layers += [
            conv(hidden, hidden, kernel, stride, kernel // 2, groups=hidden, bias=False),
            norm(hidden),
            nn.Hardswish(),
        ]
        if se:
            layers.append(SqueezeExcite(hidden, dims, flat=flat))
        layers += [conv(hidden, cout, 1, bias=False), norm(cout)]
        self.block = nn.Sequential(*layers)
        self.skip = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.block(x)
        return x + y if self.skip else y

    def masked(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y, out_len = masked_layers(self.block, x, lengths)
        return (x + y if self.skip else y), out_len


class SmallMobileNet(AudioEncoder):
    """Stem conv (stride 2) -> inverted-residual blocks -> 1x1 head; total stride 16.

    ``dims=2``: convolutions over (frequency, time) on a one-channel spectrogram, frequency averaged at the
    end. ``dims=1``: convolutions over time with the mel bins as input channels; ``channels_last`` runs them
    as height-1 2D convolutions in channels-last memory format (same function, same weights up to a unit axis).
    ``kernel``: the convolutions' kernel (None: the variant's, ``KERNEL[dims]``).
    """

    # (stem channels, ((out channels, expansion, stride) per block)) for each variant. In 2D the channels stay
    # few while the resolution is high: on two CPU cores the first layers dominate the cost.
    LAYOUT = {
        2: (16, ((16, 1, 2), (24, 3, 2), (24, 3, 1), (48, 3, 2), (48, 3, 1), (64, 4, 1))),
        1: (96, ((96, 2, 2), (128, 2, 1), (160, 2, 2), (160, 2, 1), (256, 2, 2))),
    }

    def __init__(self, frontend: FrontendConfig, dims: int = 2, width: float = WIDTH, out_dim: int = OUT_DIM,
                 kernel: int | None = None, channels_last: bool = CHANNELS_LAST) -> None:
        super().__init__()
        if channels_last and dims != 1:
            raise ValueError("channels_last applies to the 1D variant (small_mobilenet1d)")
        kernel = KERNEL[dims] if kernel is None else kernel
        self.frontend = frontend
        self.out_dim = out_dim
        self.dims = dims
        self.flat = channels_last
        conv, norm = conv_ops(dims, self.flat)
        c = lambda n: max(8, int(round(n * width)))  # noqa: E731
        stem_channels, layout = self.LAYOUT[dims]
        cin = 1 if dims == 2 else frontend.n_mels
        self.stem = nn.Sequential(conv(cin, c(stem_channels), 3, 2, 1, bias=False), norm(c(stem_channels)),
                                  nn.Hardswish())
        blocks, cin = [], c(stem_channels)
        for cout, expand, stride in layout:
            blocks.append(InvertedResidual(cin, c(cout), expand, stride, kernel=kernel, dims=dims, flat=self.flat))
            cin = c(cout)
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Sequential(conv(cin, out_dim, 1, bias=False), norm(out_dim), nn.Hardswish())
        self.stride = 16
        self.pad_multiple = self.stride  # frames per output token: what training batches are padded to
        if self.flat:
            self._register_load_state_dict_pre_hook(self._unsqueeze_1d_weights)

    def _unsqueeze_1d_weights(self, state: dict, prefix: str, *args) -> None:
        """Checkpoints of the 1D variant: (out, in, k) convolution weights become (out, in, 1, k)."""
        own = self.state_dict()
        for key, value in list(state.items()):
            if key.startswith(prefix) and value.dim() == 3 and own.get(key[len(prefix):], value).dim() == 4:
                state[key] = value.unsqueeze(2)

    def forward(self, mel: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = (mel - self.frontend.norm_mean) / self.frontend.norm_std
        if self.dims == 2:
            x = x[:, None]
        elif self.flat:
            x = x[:, :, None, :].contiguous(memory_format=torch.channels_last)  # (B, n_mels, 1, T)
        x, out_len = masked_layers((self.stem, self.blocks, self.head), x, lengths)
        if self.dims == 2:
            x = x.mean(dim=2)  # (B, C, T'): frequency averaged
        elif self.flat:
            x = x[:, :, 0, :].contiguous()
        tokens = x.transpose(1, 2)  # (B, T', C)
        out_len = out_len.clamp(1, tokens.shape[1])
        return tokens, lengths_to_mask(out_len, tokens.shape[1]).float()


@AUDIO_ENCODERS.register("small_mobilenet2d")
def build_small_mobilenet2d(frontend: FrontendConfig, width: float = WIDTH, out_dim: int = OUT_DIM) -> AudioEncoder:
    return SmallMobileNet(frontend, dims=2, width=width, out_dim=out_dim)


@AUDIO_ENCODERS.register("small_mobilenet1d")
def build_small_mobilenet1d(frontend: FrontendConfig, width: float = WIDTH, out_dim: int = OUT_DIM,
                            kernel: int = KERNEL[1], channels_last: bool = CHANNELS_LAST) -> AudioEncoder:
    return SmallMobileNet(frontend, dims=1, width=width, out_dim=out_dim, kernel=kernel, channels_last=channels_last)
