"""Audio input hardening (issue 14 items 2, 11, 12): blockwise decoding, non-finite audio, missing/empty/m4a files."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import soxr

from salsa2.audio.decode import AudioReadError, iter_audio, load_audio
from salsa2.features.logmel_cache import SpectrogramCache, build_cache
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


def test_blockwise_resampling_matches_whole_file(tmp_path):
    rng = np.random.default_rng(1)
    x = (0.3 * rng.standard_normal(44100 * 75)).astype(np.float32)  # 75 s: three 30-s decode blocks
    sf.write(tmp_path / "a.wav", x, 44100, subtype="FLOAT")
    got = np.concatenate(list(iter_audio(tmp_path / "a.wav", 16000)))
    ref = soxr.resample(x, 44100, 16000, quality="HQ")
    assert abs(len(got) - len(ref)) <= 1
    n = min(len(got), len(ref))
    assert np.max(np.abs(got[:n] - ref[:n])) < 1e-4
    assert len(list(iter_audio(tmp_path / "a.wav", 16000))) >= 3  # really decoded in blocks


def test_huge_float_samples_are_rejected_not_cached(tmp_path):
    """Float WAV samples of 1e30 are finite, but their log-mel is not: the cache must reject the clip."""
    rng = np.random.default_rng(2)
    sf.write(tmp_path / "good.wav", (0.1 * rng.standard_normal(16000)).astype(np.float32), 16000, subtype="FLOAT")
    loud = (0.1 * rng.standard_normal(16000)).astype(np.float32)
    loud[4000:4100] = 1e30
    sf.write(tmp_path / "loud.wav", loud, 16000, subtype="FLOAT")
    nan = (0.1 * rng.standard_normal(16000)).astype(np.float32)
    nan[10] = np.nan
    sf.write(tmp_path / "nan.wav", nan, 16000, subtype="FLOAT")
    audio = pd.DataFrame({"audio_id": ["good", "loud", "nan"], "path": ["good.wav", "loud.wav", "nan.wav"]})
    rejects = build_cache(tmp_path / "cache", audio, FrontendConfig(), root=tmp_path)
    assert dict(zip(rejects["audio_id"], rejects["reason"])) == {"loud": "non_finite", "nan": "non_finite"}
    assert "0.2 s" in rejects.set_index("audio_id").loc["loud", "detail"]
    cache = SpectrogramCache(tmp_path / "cache")
    assert cache.ids() == ["good"] and np.isfinite(cache.get("good")).all()


def test_missing_and_zero_byte_files_say_so(tmp_path):
    with pytest.raises(AudioReadError, match="missing: file not found") as missing:
        load_audio(tmp_path / "nope.wav", 16000)
    (tmp_path / "zero.wav").write_bytes(b"")
    with pytest.raises(AudioReadError, match="empty: zero-byte file") as empty:
        load_audio(tmp_path / "zero.wav", 16000)
    assert (missing.value.reason, empty.value.reason) == ("missing", "empty")


def _m4a(path: Path, seconds: float = 1.0) -> None:
    av = pytest.importorskip("av")
    with av.open(str(path), "w") as out:
        stream = out.add_stream("aac", rate=16000)
        stream.layout = "mono"
        t = np.arange(int(16000 * seconds)) / 16000
        wave = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
        for s in range(0, len(wave), 1024):
            frame = av.AudioFrame.from_ndarray(wave[None, s : s + 1024], format="fltp", layout="mono")
            frame.sample_rate = 16000
            frame.pts = s
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)


def test_m4a_is_decoded_through_pyav(tmp_path):
    _m4a(tmp_path / "tone.m4a")
    wav = load_audio(tmp_path / "tone.m4a", 16000)
    assert 0.9 < len(wav) / 16000 < 1.2
    spectrum = np.abs(np.fft.rfft(wav[4000:12000]))
    assert abs(np.argmax(spectrum) * 16000 / 8000 - 440) < 5  # the tone survived encode/decode


def test_m4a_without_pyav_is_a_reject_with_the_reason(tmp_path, monkeypatch):
    _m4a(tmp_path / "tone.m4a")
    monkeypatch.setitem(sys.modules, "av", None)  # `import av` now raises ImportError
    with pytest.raises(AudioReadError, match="install PyAV") as err:
        load_audio(tmp_path / "tone.m4a", 16000)
    assert err.value.reason == "unsupported"


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
    """A 2-hour 16 kHz file: log-mel computed in blocks, peak RSS < 1 GB (was 4.4 GB decoded whole)."""
    path = tmp_path / "long.wav"
    rng = np.random.default_rng(3)
    block = (0.1 * rng.standard_normal(16000 * 60)).astype(np.float32)
    with sf.SoundFile(path, "w", 16000, 1, subtype="PCM_16") as f:
        for _ in range(120):
            f.write(block)
    out = subprocess.run([sys.executable, "-c", PEAK_SCRIPT, str(path)], capture_output=True, text=True,
                         check=True)
    assert int(out.stdout.split()[-1]) < 1024, out.stdout


def test_top_k_with_a_nan_row_still_returns_k_valid_hits():
    """An index row with a NaN embedding (an index from before the non-finite checks) must not eat a hit."""
    from salsa2.search.query import top_k

    items = np.array([[1.0, 0.0], [np.nan, np.nan], [0.6, 0.8], [0.0, 1.0]], np.float32)
    scores, rows = top_k(np.array([[1.0, 0.0]], np.float32), items, 3)
    assert rows[0].tolist() == [0, 2, 3] and np.isfinite(scores).all()
