"""Decoding audio files (salsa2.audio.decode): blockwise resampling, missing and zero-byte files named, m4a through
PyAV or a reject naming it."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr

from salsa2.audio.decode import AudioReadError, iter_audio, load_audio


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


def test_truncated_mp3_records_the_length_that_decodes_and_says_so(tmp_path, caplog):
    from salsa2.audio.decode import audio_info

    sr = 16000
    whole = tmp_path / "whole.mp3"
    sf.write(whole, (0.1 * np.random.default_rng(0).standard_normal(5 * sr)).astype(np.float32), sr)
    cut = tmp_path / "cut.mp3"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])  # its Xing header still says 5 s
    decoded = len(load_audio(cut, sr, reject_silent=False)) / sr
    assert decoded < 4.0
    with caplog.at_level("WARNING"):
        duration, rate, channels = audio_info(cut)
    assert abs(duration - decoded) < 0.05 and (rate, channels) == (sr, 1)
    assert "cut.mp3: the header says 5.00 s but" in caplog.text
    caplog.clear()
    assert abs(audio_info(whole)[0] - 5.0) < 0.05 and "header says" not in caplog.text


def test_symlink_loop_and_dangling_link_are_not_called_missing_files(tmp_path):
    (tmp_path / "a.wav").symlink_to(tmp_path / "b.wav")
    (tmp_path / "b.wav").symlink_to(tmp_path / "a.wav")
    with pytest.raises(AudioReadError, match=r"a\.wav: link_loop: symbolic links that point at each other") as loop:
        load_audio(tmp_path / "a.wav", 16000)
    (tmp_path / "gone.wav").symlink_to(tmp_path / "target.wav")
    with pytest.raises(AudioReadError, match=r"gone\.wav: missing: a symbolic link to .*target\.wav, which does not"):
        load_audio(tmp_path / "gone.wav", 16000)
    assert loop.value.reason == "link_loop"
