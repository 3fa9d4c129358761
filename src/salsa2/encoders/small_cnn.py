"""A small MobileNetV3-style CNN (inverted residuals, squeeze-excitation, hard-swish) for the demo.

Same family as EfficientAT's MobileNetV3 (seed 002, "MN"), scaled down to ~0.4 M parameters so that
it trains in seconds per epoch on two CPU cores. Handles any input length; the output tokens are
time steps (frequency is averaged away), 16x coarser than the input frames.
"""

from __future__ import annotations

import torch
from torch import nn

from salsa2.encoders import AUDIO_ENCODERS
from salsa2.encoders.base import AudioEncoder, downsample_lengths, lengths_to_mask
from salsa2.frontends import FrontendConfig


class SqueezeExcite(nn.Module):
    def __init__(self, channels: int, reduction: int = 4) -> None:
        super().__init__()
        hidden = max(8, channels // reduction)
        self.fc = nn.Sequential(
            nn.Conv2d(channels, hidden, 1), nn.ReLU(inplace=True), nn.Conv2d(hidden, channels, 1), nn.Hardsigmoid()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.fc(x.mean(dim=(2, 3), keepdim=True))


class InvertedResidual(nn.Module):
    """1x1 expand -> depthwise kxk (stride) -> SE -> 1x1 project, with a skip when shapes allow."""

    def __init__(self, cin: int, cout: int, expand: int, stride: int, kernel: int = 3, se: bool = True) -> None:
        super().__init__()
        hidden = cin * expand
        layers: list[nn.Module] = []
        if expand != 1:
            layers += [nn.Conv2d(cin, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.Hardswish()]
        layers += [
            nn.Conv2d(hidden, hidden, kernel, stride, kernel // 2, groups=hidden, bias=False),
            nn.BatchNorm2d(hidden),
            nn.Hardswish(),
        ]
        if se:
            layers.append(SqueezeExcite(hidden))
        layers += [nn.Conv2d(hidden, cout, 1, bias=False), nn.BatchNorm2d(cout)]
        self.block = nn.Sequential(*layers)
        self.skip = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.block(x)
        return x + y if self.skip else y


class SmallMobileNet(AudioEncoder):
    # (out channels, expansion, stride) per block; total stride 16 in time and frequency.
    BLOCKS = ((16, 1, 1), (24, 4, 2), (24, 3, 1), (40, 3, 2), (40, 3, 1), (64, 4, 2), (64, 4, 1), (96, 4, 1))

    def __init__(self, frontend: FrontendConfig, width: float = 1.0, out_dim: int = 256) -> None:
        super().__init__()
        self.frontend = frontend
        self.out_dim = out_dim
        c = lambda n: max(8, int(round(n * width)))  # noqa: E731
        stem = c(16)
        self.stem = nn.Sequential(nn.Conv2d(1, stem, 3, 2, 1, bias=False), nn.BatchNorm2d(stem), nn.Hardswish())
        blocks, cin = [], stem
        for cout, expand, stride in self.BLOCKS:
            blocks.append(InvertedResidual(cin, c(cout), expand, stride))
            cin = c(cout)
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Sequential(nn.Conv2d(cin, out_dim, 1, bias=False), nn.BatchNorm2d(out_dim), nn.Hardswish())
        self.stride = 16

    def forward(self, mel: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = (mel - self.frontend.norm_mean) / self.frontend.norm_std
        x = x * lengths_to_mask(lengths, x.shape[-1])[:, None, :]  # padding is 0 after standardising
        x = self.head(self.blocks(self.stem(x[:, None])))  # (B, C, F', T')
        tokens = x.mean(dim=2).transpose(1, 2)  # (B, T', C)
        out_len = downsample_lengths(lengths, self.stride).clamp_max(tokens.shape[1])
        return tokens, lengths_to_mask(out_len, tokens.shape[1]).float()


@AUDIO_ENCODERS.register("small_mobilenet")
def build_small_mobilenet(frontend: FrontendConfig, width: float = 1.0, out_dim: int = 256) -> AudioEncoder:
    return SmallMobileNet(frontend, width=width, out_dim=out_dim)
