"""Training batches (salsa2.features.splits): padded to what the audio encoder needs."""

from __future__ import annotations

import numpy as np
import torch

from salsa2.audio.frontends import FrontendConfig
from salsa2.features.splits import PAD_MULTIPLE, collate_mels, pad_multiple_of
from salsa2.model.encoders import AUDIO_ENCODERS

MEL64 = FrontendConfig(n_mels=64, f_max=8000.0)


def test_training_batches_pad_to_what_the_encoder_needs():
    cnn = AUDIO_ENCODERS.build("small_mobilenet1d", frontend=MEL64)
    transformer = AUDIO_ENCODERS.build("small_transformer", frontend=MEL64)
    assert pad_multiple_of(cnn) == 32 and pad_multiple_of(transformer) == 32
    assert pad_multiple_of(torch.nn.Linear(1, 1)) == PAD_MULTIPLE  # undeclared: the old policy
    mels = [np.zeros((64, 130), np.float32), np.ones((64, 40), np.float32)]
    mel, lengths = collate_mels(mels, pad_multiple=32)
    assert mel.shape == (2, 64, 160) and lengths.tolist() == [130, 40]
    assert collate_mels(mels)[0].shape[-1] == 256
