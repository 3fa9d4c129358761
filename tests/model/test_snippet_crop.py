"""SnippetEncoder crops the partly filled snippets of a backbone whose padding is masked: the same
outputs and gradients as running every snippet at full length, and the backbone really sees the cropped width.
(Backbones that see whole snippets, fill included, are never cropped: model/test_reference_equivalence.py holds PaSST,
MobileNet and ATST to the authors' outputs on 5, 12 and 25 s clips.)"""

import torch

from salsa2.model.encoders import AUDIO_ENCODERS
from salsa2.model.encoders.base import weighted_mean
from salsa2.audio.frontend_config import FrontendConfig

FRONTEND = FrontendConfig(sample_rate=16000, n_fft=512, win_length=400, hop_length=160, n_mels=64, f_min=0.0,
                          f_max=8000.0)


def _run(enc, mel, lengths, crop: bool):
    type(enc.backbone).padding_is_masked = crop
    try:
        mel = mel.clone().requires_grad_()
        out = weighted_mean(*enc(mel, lengths))
        out.square().sum().backward()
        return out.detach(), mel.grad
    finally:
        type(enc.backbone).padding_is_masked = True


def test_cropped_snippets_give_the_full_length_result():
    torch.manual_seed(0)
    enc = AUDIO_ENCODERS.build("small_transformer", frontend=FRONTEND, dropout=0.0)
    widths = []
    forward = enc.backbone.forward
    enc.backbone.forward = lambda m, n: (widths.append(m.shape[-1]), forward(m, n))[1]
    lengths = torch.tensor([1200, 700, 2500, 1000, 3000, 520])  # last snippets of 200, 700, 500, 520 frames
    mel = torch.randn(6, 64, 3008)
    for mode in (enc.eval, enc.train):
        mode()
        widths.clear()
        cropped, grad_cropped = _run(enc, mel, lengths, crop=True)
        assert widths == [1000, 704]  # full snippets, then the partial ones cut to 22 x 32 frames
        full, grad_full = _run(enc, mel, lengths, crop=False)
        assert widths[2:] == [1000]
        torch.testing.assert_close(cropped, full, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(grad_cropped, grad_full, atol=1e-6, rtol=1e-4)

