"""EfficientAT MobileNetV3 (``mn40_as_ext``) on 10 s snippets, averaged as in the authors' code.

Primus et al. 2024 (sec. 4.2.1) uses EfficientAT's MobileNetV3 of width 4.0 pre-trained on AudioSet ("MN"). The module
tree mirrors the published checkpoint (``features.<i>.block.<j>...``, ``classifier.<k>...``) so its
state_dict loads strictly; ``tests/fixtures/mn40_as_ext_keys.json`` lists the reference keys and shapes.

Input: the 32 kHz, 128-bin Kaldi log-mel of PaSST (frontend ``kaldi128`` in params.yaml), standardised as
``(x - norm_mean) / norm_std``. Output tokens are the last feature map (3840 channels) averaged over
frequency, one per 32 input frames (~0.32 s); mean pooling over them is the checkpoint's global average
pool. Padding frames are set to the spectrogram of silence (squeeze-excitation averages over them).

The authors (OptimusPrimus/salsa ``models/audio/base.py``, ``WindowedPrediction``) run MobileNet like the
transformers: the waveform zero-padded to whole 10 s snippets, each snippet's global average pool (silence
included), the snippets' embeddings averaged. ``build_mn40_as_ext`` does the same (``SnippetEncoder``,
``pool: snippet``); ``pool_silence: false`` pools only the tokens a valid frame reaches instead. In training
the authors' clips are zero-padded to 30 s, so all three snippets run through the network and the silent ones
enter BatchNorm's batch statistics (``train_pad_seconds: 30``); ``train_pad_seconds: 0`` runs only the
snippets that hold audio.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from salsa2.model import pretrained
from salsa2.model.encoders import AUDIO_ENCODERS
from salsa2.model.encoders.base import AudioEncoder, SnippetEncoder, lengths_to_mask
from salsa2.audio.frontends import FrontendConfig

# Defaults shared by MobileNetV3 and the mn40_as_ext builder (the authors' wrapper).
CLASSIFIER = False  # the AudioSet head is unused for retrieval
POOL_SILENCE = True  # each snippet's global average pool covers its silent padding
TRAIN_PAD_SECONDS = 30.0  # training: clips completed to 30 s, every snippet through BatchNorm (the authors)

# MobileNetV3-Large (Howard et al. 2019, Table 1) at width 1: in, kernel, expanded, out, SE, hard-swish, stride.
MOBILENET_V3_LARGE = (
    (16, 3, 16, 16, False, False, 1),
    (16, 3, 64, 24, False, False, 2),
    (24, 3, 72, 24, False, False, 1),
    (24, 5, 72, 40, True, False, 2),
    (40, 5, 120, 40, True, False, 1),
    (40, 5, 120, 40, True, False, 1),
    (40, 3, 240, 80, False, True, 2),
    (80, 3, 200, 80, False, True, 1),
    (80, 3, 184, 80, False, True, 1),
    (80, 3, 184, 80, False, True, 1),
    (80, 3, 480, 112, True, True, 1),
    (112, 3, 672, 112, True, True, 1),
    (112, 5, 672, 160, True, True, 2),
    (160, 5, 960, 160, True, True, 1),
    (160, 5, 960, 160, True, True, 1),
)


def make_divisible(v: float, divisor: int = 8) -> int:
    """Round to the nearest multiple of ``divisor``, never more than 10% below ``v`` (MobileNet rule)."""
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


def conv_bn(cin: int, cout: int, kernel: int = 1, stride: int = 1, groups: int = 1,
            act: type[nn.Module] | None = nn.Hardswish) -> nn.Sequential:
    """Conv (no bias) -> BatchNorm(eps 1e-3, momentum 0.01) [-> activation], keys ``0.*`` and ``1.*``."""
    layers: list[nn.Module] = [
        nn.Conv2d(cin, cout, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout, eps=0.001, momentum=0.01),
    ]
    if act is not None:
        layers.append(act())
    return nn.Sequential(*layers)


class ChannelSE(nn.Module):
    """Squeeze-excitation over channels: x * sigmoid(fc2(relu(fc1(mean_ft x))))."""

    def __init__(self, channels: int, reduction: int = 4) -> None:
        super().__init__()
        hidden = make_divisible(channels // reduction, 8)
        self.fc1 = nn.Linear(channels, hidden)
        self.fc2 = nn.Linear(hidden, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = torch.sigmoid(self.fc2(torch.relu(self.fc1(x.mean(dim=(2, 3))))))
        return x * s[:, :, None, None]


class ConcurrentSE(nn.Module):
    """EfficientAT's container of SE layers (one, over channels, for the released models)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conc_se_layers = nn.ModuleList([ChannelSE(channels)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conc_se_layers[0](x)


class Bottleneck(nn.Module):
    """Inverted residual: [1x1 expand] -> depthwise k x k (stride) -> [SE] -> 1x1 project, skip if shapes allow."""

    def __init__(self, cin: int, kernel: int, hidden: int, cout: int, se: bool, hswish: bool, stride: int) -> None:
        super().__init__()
        act = nn.Hardswish if hswish else nn.ReLU
        layers: list[nn.Module] = []
        if hidden != cin:
            layers.append(conv_bn(cin, hidden, 1, act=act))
        layers.append(conv_bn(hidden, hidden, kernel, stride, groups=hidden, act=act))
        if se:
            layers.append(ConcurrentSE(hidden))
        layers.append(conv_bn(hidden, cout, 1, act=None))
        self.block = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.block(x)
        return x + y if self.residual else y


class MobileNetV3(AudioEncoder):
    """EfficientAT's MobileNetV3 on (B, n_mels, T) log-mels -> per-time tokens (B, T/32, 6 * 160 * width).

    Args:
        frontend: the log-mel settings it reads (the checkpoint expects PaSST's 32 kHz, 128-bin Kaldi mels).
        width: channel multiplier (4.0 for mn40).
        classifier: also build the AudioSet MLP head (``classifier.2``, ``classifier.5``), unused for retrieval;
            checkpoints load with or without it.
        num_classes: outputs of that head.
        pool_silence: the pooling mask covers every token (the checkpoint's global pool over the padded input);
            false: only the tokens a valid frame reaches.
    """

    def __init__(self, frontend: FrontendConfig, width: float = 4.0, classifier: bool = CLASSIFIER,
                 num_classes: int = 527, pool_silence: bool = POOL_SILENCE) -> None:
        super().__init__()
        self.frontend = frontend
        self.pool_silence = pool_silence
        ch = lambda c: make_divisible(c * width, 8)  # noqa: E731
        layers: list[nn.Module] = [conv_bn(1, ch(16), 3, 2)]
        for cin, k, hidden, cout, se, hs, stride in MOBILENET_V3_LARGE:
            layers.append(Bottleneck(ch(cin), k, ch(hidden), ch(cout), se, hs, stride))
        last = ch(MOBILENET_V3_LARGE[-1][3])
        layers.append(conv_bn(last, 6 * last, 1))
        self.features = nn.Sequential(*layers)
        self.out_dim = 6 * last
        self.stride = 32
        if classifier:
            self.classifier = nn.Sequential(
                nn.AdaptiveAvgPool2d(1), nn.Flatten(1), nn.Linear(6 * last, ch(1280)), nn.Hardswish(),
                nn.Dropout(0.2), nn.Linear(ch(1280), num_classes),
            )
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def token_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        """Output steps that a valid input of ``lengths`` frames reaches: five stride-2 convs (ceil each)."""
        out = lengths
        for _ in range(int(math.log2(self.stride))):
            out = (out + 1) // 2
        return out.clamp_min(1)

    def forward(self, mel: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # frames past the audio hold silence (or the frontend's tail frames): set by SnippetEncoder
        x = (mel - self.frontend.norm_mean) / self.frontend.norm_std
        fmap = self.features(x[:, None])  # (B, C, F', T')
        tokens = fmap.mean(dim=2).transpose(1, 2)
        if self.pool_silence:  # the checkpoint's global average pool over the whole (padded) input
            return tokens, tokens.new_ones(tokens.shape[:2])
        n = self.token_lengths(lengths).clamp_max(tokens.shape[1])
        return tokens, lengths_to_mask(n, tokens.shape[1]).float()

    def load_checkpoint(self, path) -> None:
        state = pretrained.load_state_dict(path)
        if not hasattr(self, "classifier"):
            state = {k: v for k, v in state.items() if not k.startswith("classifier.")}
        self.load_state_dict(state, strict=True)


@AUDIO_ENCODERS.register("mn40_as_ext")
def build_mn40_as_ext(frontend: FrontendConfig, weights: str = "pretrained", classifier: bool = CLASSIFIER,
                      snippet_seconds: float = 10.0, pool_silence: bool = POOL_SILENCE,
                      train_pad_seconds: float = TRAIN_PAD_SECONDS) -> AudioEncoder:
    """MobileNetV3 width 4.0 with the ``mn40_as_ext`` AudioSet weights (``weights``: pretrained | none | file)
    on ``snippet_seconds`` snippets completed with silence, snippet embeddings averaged (the authors' wrapper);
    ``pool_silence``: each snippet's mean covers its silent padding too (the checkpoint's global pool);
    ``train_pad_seconds``: in training every clip is completed with silence to this length and all its snippets
    run, the silent ones unpooled (BatchNorm statistics as the authors' 30 s clips; 0: only snippets with audio)."""
    if snippet_seconds <= 0:
        raise ValueError(f"mn40_as_ext: snippet_seconds must be > 0, got {snippet_seconds}")
    if train_pad_seconds < 0:
        raise ValueError(f"mn40_as_ext: train_pad_seconds must be >= 0 (0: off), got {train_pad_seconds}")
    model = MobileNetV3(frontend, width=4.0, classifier=classifier, pool_silence=pool_silence)
    path = pretrained.resolve(weights, "mn40_as_ext")
    if path is not None:
        model.load_checkpoint(path)
    frames = int(round(snippet_seconds * frontend.frames_per_second))
    return SnippetEncoder(model, frames, min_snippet_frames=model.stride, pool="snippet",
                          train_pad_frames=int(round(train_pad_seconds * frontend.frames_per_second)))
