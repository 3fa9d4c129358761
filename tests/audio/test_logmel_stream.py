"""Blockwise log-mels (salsa2.audio.logmel_stream): the whole file's frames, bounded memory on long files."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from salsa2.audio.frontends import FrontendConfig, compute_logmel
from salsa2.audio.logmel_stream import stream_logmel

PASST_LIKE = FrontendConfig(sample_rate=32000, n_fft=1024, win_length=800, hop_length=320, n_mels=128,
                            f_max=15000, preemphasis=0.97, preemphasis_trim=True, mel_scale="kaldi",
                            window="hann_symmetric")


def logmel_rounding_tolerance(cfg: FrontendConfig, ref: np.ndarray) -> np.ndarray:
    """Largest float32 rounding difference expected between two log-mels of the same audio computed with
    differently shaped STFT / mel-matmul calls (which CPU kernels block and sum in different orders).

    A log-mel value is log(m + offset): a relative error r of the mel energy m is an absolute error r in the
    output. r is a few units of float32 rounding (u = 2^-24 ... eps = 2^-23) per FFT butterfly level
    (log2 n_fft) plus a random-walk sum over the n_fft / 2 + 1 power bins of a band (sqrt of their count);
    the output itself is rounded at its own magnitude (|ref| eps). Measured: at most 8 ulps of |ref|
    (9.5e-7), against a bound of about 5e-6 here; a misaligned frame or pre-emphasis sample at a block
    boundary changes values by 1e-3 or more.
    """
    eps = float(np.finfo(np.float32).eps)
    return eps * (np.log2(cfg.n_fft) + np.sqrt(cfg.n_fft // 2 + 1) + np.abs(ref))


@pytest.mark.parametrize("cfg", [FrontendConfig(), FrontendConfig(preemphasis=0.97), PASST_LIKE])
@pytest.mark.parametrize("n", [100, 5000, 5923, 160017])
def test_blockwise_logmel_equals_whole_file(cfg, n):
    """Blockwise log-mels have the whole file's frames: identical in number and, up to float32 rounding of the
    differently shaped STFT calls, in value; bit-identical when one block holds the whole file (same calls)."""
    x = (0.1 * np.random.default_rng(n).standard_normal(n)).astype(np.float32)
    blocks = [x[i : i + 777] for i in range(0, n, 777)]
    ref = compute_logmel(x, cfg)
    tol = logmel_rounding_tolerance(cfg, ref)
    for expected in (0, ref.shape[1], ref.shape[1] // 2):  # no header estimate, exact, too small
        got = stream_logmel(blocks, cfg, block_frames=7, expected_frames=expected)
        assert got.shape == ref.shape and got.dtype == ref.dtype
        excess = np.abs(got.astype(np.float64) - ref) - tol
        assert excess.max() <= 0, f"blockwise log-mel off by {excess.max():.2e} beyond float32 rounding"
        whole = stream_logmel(blocks, cfg, block_frames=ref.shape[1], expected_frames=expected)
        np.testing.assert_array_equal(whole, ref)


PEAK_SCRIPT = """
import resource, sys
import numpy as np
from salsa2.audio.frontends import FrontendConfig
from salsa2.audio.logmel_stream import load_logmel
mel, duration = load_logmel(sys.argv[1], FrontendConfig(), dtype=np.float16)
assert mel.shape[1] == FrontendConfig().num_frames(int(duration * 16000)), mel.shape
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)
"""


@pytest.mark.slow
def test_two_hour_file_peak_memory_is_bounded(tmp_path):
    """A 2-hour 16 kHz file: log-mel computed in blocks, peak RSS < 1 GB (decoded whole, it takes several GB)."""
    path = tmp_path / "long.wav"
    rng = np.random.default_rng(3)
    block = (0.1 * rng.standard_normal(16000 * 60)).astype(np.float32)
    with sf.SoundFile(path, "w", 16000, 1, subtype="PCM_16") as f:
        for _ in range(120):
            f.write(block)
    out = subprocess.run([sys.executable, "-c", PEAK_SCRIPT, str(path)], capture_output=True, text=True,
                         check=True)
    assert int(out.stdout.split()[-1]) < 1024, out.stdout
