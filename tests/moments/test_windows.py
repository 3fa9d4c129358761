"""Per-window embeddings of long recordings: where the windows fall, the same frames as the whole file's log-mel,
bounded memory, and one-line errors for recordings that cannot be searched."""

from __future__ import annotations

import dataclasses
import tracemalloc
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile as sf

from helpers.tiny import FRONTEND, FakeTextEncoder, tiny_model
from salsa2.audio.decode import AudioReadError, load_audio
from salsa2.audio.frontends import FrontendConfig, compute_logmel
from salsa2.moments import windows as windows_mod
from salsa2.moments.windows import embed_windows, window_bounds, window_embeddings
from salsa2.model.dual_encoder import DualEncoder
from salsa2.search.inference import MEL_DTYPE, SearchModel, embed_audio, embed_mels

SR = FRONTEND.sample_rate
F16 = float(np.finfo(np.float16).eps)


@pytest.fixture(scope="module")
def model() -> SearchModel:
    """An untrained tiny snippet transformer: its embeddings depend on the input (the tiny CNN's barely do)."""
    dm = tiny_model("small_transformer")
    dm.eval()
    return SearchModel("transformer", Path("."), dm, {}, "0" * 16, "spaces")


def _recording(path: Path, seconds: float, seed: int = 0) -> np.ndarray:
    """Noise bursts of changing colour: windows differ from each other."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    wav = 0.05 * rng.standard_normal(n)
    for s in range(0, n, SR * 3):
        wav[s : s + SR] += 0.3 * np.sin(2 * np.pi * rng.uniform(200, 4000) * np.arange(min(SR, n - s)) / SR)
    wav = wav.astype(np.float32)
    sf.write(path, wav, SR, subtype="FLOAT")
    return wav


@pytest.mark.parametrize(("duration", "window", "hop", "starts", "ends"), [
    (10.0, 4.0, 2.0, [0, 2, 4, 6], [4, 6, 8, 10]),
    (10.5, 4.0, 2.0, [0, 2, 4, 6, 8], [4, 6, 8, 10, 10.5]),  # the last window reaches the end, shorter
    (3.0, 4.0, 1.0, [0], [3.0]),  # shorter than a window: one window covering it
    (4.0, 4.0, 1.0, [0], [4.0]),
    (10.0, 2.0, 3.0, [0, 3, 6, 9], [2, 5, 8, 10]),  # hop > window: gaps
])
def test_window_bounds(duration, window, hop, starts, ends):
    s, e = window_bounds(duration, window, hop)
    np.testing.assert_allclose(s, starts)
    np.testing.assert_allclose(e, ends)
    assert s.dtype == e.dtype == np.float64


@pytest.mark.parametrize(("window", "hop"), [(0.0, 1.0), (4.0, -1.0), (float("nan"), 1.0), (4.0, float("inf"))])
def test_bad_window_or_hop_is_one_line(window, hop):
    with pytest.raises(ValueError, match=r"(window|hop) = .* seconds; give a positive number"):
        window_bounds(10.0, window, hop)


def test_windows_are_slices_of_the_whole_files_logmel(model, tmp_path):
    """A file longer than one log-mel block (60 s): each window is embedded from the whole file's frames."""
    wav = _recording(tmp_path / "long.wav", 75.0)
    got = window_embeddings(model, tmp_path / "long.wav", 5.0, 2.5, batch_size=8)
    assert got.emb.dtype == np.float32 and got.emb.shape == (len(got), model.embed_dim)
    np.testing.assert_allclose(np.linalg.norm(got.emb, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(got.starts, np.arange(29) * 2.5)
    assert got.ends[-1] == pytest.approx(75.0)
    mel = compute_logmel(wav, FRONTEND).astype(MEL_DTYPE)
    fps = FRONTEND.frames_per_second
    bounds = [(round(s * fps), round(e * fps)) for s, e in zip(got.starts, got.ends)]
    bounds[-1] = (bounds[-1][0], mel.shape[1])
    want = embed_mels(model, [mel[:, a:b] for a, b in bounds])
    # the streamed log-mel may round differently in float32 before float16: compare embeddings by cosine, with a
    # tolerance that a one-hop shift of the windows exceeds
    assert np.sum(got.emb * want, axis=1).min() > 1 - 1e-5
    assert np.sum(got.emb[1:] * want[:-1], axis=1).max() < 1 - 1e-5


def test_file_and_waveform_give_the_same_windows(model, tmp_path):
    wav = _recording(tmp_path / "a.wav", 20.0, seed=1)
    from_file = window_embeddings(model, tmp_path / "a.wav", 4.0, 1.0)
    from_array = window_embeddings(model, wav, 4.0, 1.0)
    np.testing.assert_array_equal(from_file.starts, from_array.starts)
    assert np.sum(from_file.emb * from_array.emb, axis=1).min() > 1 - 1e-3
    # a waveform at another rate is resampled to the model's
    resampled = window_embeddings(model, wav[::2], 4.0, 1.0, sample_rate=SR // 2)
    np.testing.assert_allclose(resampled.ends[-1], 20.0, atol=1e-3)


def test_a_recording_shorter_than_a_window_is_one_window_equal_to_its_clip_embedding(model, tmp_path):
    _recording(tmp_path / "short.wav", 2.5)
    got = window_embeddings(model, tmp_path / "short.wav", 4.0, 1.0)
    assert (got.starts.tolist(), got.ends.tolist()) == ([0.0], [2.5])
    np.testing.assert_allclose(got.emb, embed_audio(model, tmp_path / "short.wav"), atol=1e-5)


def test_frames_past_end_frontend_is_streamed_exactly(tmp_path):
    """A PaSST-like frontend (pre-emphasis, frames past the end): the blockwise frames equal the whole file's."""
    cfg = FrontendConfig(sample_rate=32000, n_fft=1024, win_length=800, hop_length=320, n_mels=32, f_max=15000.0,
                         mel_scale="kaldi", preemphasis=0.97, preemphasis_trim=True, window="hann_symmetric",
                         frames_past_end=True)
    rng = np.random.default_rng(2)
    sf.write(tmp_path / "x.wav", (0.1 * rng.standard_normal(32000 * 70 + 123)).astype(np.float32), 32000,
             subtype="FLOAT")
    mel, duration = windows_mod._file_logmel(SimpleNamespace(frontend=cfg), tmp_path / "x.wav", 0.1)
    want = compute_logmel(load_audio(tmp_path / "x.wav", 32000), cfg)
    assert mel.shape == want.shape and duration == pytest.approx(70 + 123 / 32000)
    np.testing.assert_allclose(mel.astype(np.float32), want, rtol=2 * F16, atol=1e-3)


def _peak_bytes(model: SearchModel, path: Path) -> int:
    tracemalloc.start()
    windows_mod.window_embeddings(model, path, 4.0, 1.0)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def test_memory_grows_with_the_logmel_not_the_waveform(tmp_path, monkeypatch):
    """Peak numpy memory for 10 min minus that for 5 min is about the float16 log-mel of 5 min (0.96 MB here),
    not the waveform's 19.2 MB: the audio is decoded and transformed in blocks.

    Measured for a two-hour file with the demo models: docs/moments.md, "Finding moments"."""
    dm = tiny_model("small_mobilenet1d").eval()
    model = SearchModel("cnn", Path("."), dm, {}, "0" * 16, "spaces")
    rng = np.random.default_rng(0)
    for minutes in (5, 10):
        with sf.SoundFile(tmp_path / f"{minutes}.flac", "w", SR, 1, subtype="PCM_16") as f:
            for _ in range(minutes * 2):
                f.write((0.1 * rng.standard_normal(30 * SR)).astype(np.float32))
    calls = []
    monkeypatch.setattr(windows_mod, "embed_mels", lambda m, mels, batch_size: calls.append(len(mels)) or
                        np.ones((len(mels), m.embed_dim), np.float32))
    grow = _peak_bytes(model, tmp_path / "10.flac") - _peak_bytes(model, tmp_path / "5.flac")
    mel_bytes = FRONTEND.n_mels * 300 * FRONTEND.frames_per_second * 2
    assert max(calls) == windows_mod.WINDOWS_PER_CALL
    assert grow < 2 * mel_bytes, (grow, mel_bytes)


def test_silent_short_and_broken_recordings_are_one_line(model, tmp_path):
    sf.write(tmp_path / "silent.wav", np.zeros(SR * 5, np.float32), SR)
    sf.write(tmp_path / "blip.wav", np.full(160, 0.1, np.float32), SR)
    (tmp_path / "broken.wav").write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(100))
    for name, reason in (("silent.wav", "silent"), ("blip.wav", "too_short"), ("broken.wav", "corrupt"),
                         ("missing.wav", "missing")):
        with pytest.raises(AudioReadError) as err:
            window_embeddings(model, tmp_path / name, 4.0, 1.0)
        assert err.value.reason == reason and name in str(err.value) and "\n" not in str(err.value)
    for wav, message in ((np.zeros(SR * 5, np.float32), "silent"), (np.zeros((2, SR), np.float32), "mono"),
                         (np.full(100, 0.1, np.float32), "shorter than"),
                         (np.array([0.1, np.nan] * SR, np.float32), "NaN")):
        with pytest.raises(ValueError, match=message):
            window_embeddings(model, wav, 4.0, 1.0)


def test_embed_windows_of_a_logmel_keeps_inner_tail_frames_as_audio(model):
    """With frames past the end, an inner window's tail frames are the following audio (as embed_mels' chunks)."""
    base = tiny_model("small_mobilenet1d")
    cfg = dataclasses.replace(base.cfg, frontend=dataclasses.replace(FRONTEND, frames_past_end=True))
    tailed = dataclasses.replace(model, model=DualEncoder(cfg, text_encoder=FakeTextEncoder()).eval())
    assert tailed.frontend.tail_frames == 2
    rng = np.random.default_rng(0)
    mel = rng.normal(-4, 2, (FRONTEND.n_mels, 1002)).astype(np.float32)  # 1000 audio frames + 2 tail frames
    got = embed_windows(tailed, mel, 10.0, 4.0, 3.0)
    np.testing.assert_allclose(got.starts, [0, 3, 6])
    want = embed_mels(tailed, [mel[:, 0:402], mel[:, 300:702], mel[:, 600:1002]])
    np.testing.assert_allclose(got.emb, want, atol=1e-6)
