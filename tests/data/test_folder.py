"""Folder datasets -> tables -> log-mel cache, with rejects reported and nothing half-written."""

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from salsa2.audio.decode import load_audio
from salsa2.data.datasets.folder import prepare_folder
from salsa2.features.logmel_cache import SpectrogramCache, build_cache
from salsa2.audio.frontends import FrontendConfig, compute_logmel
from salsa2.data.tables import TableError, read_tables, write_tables


def _library(tmp_path):
    rng = np.random.default_rng(0)
    sf.write(tmp_path / "good.wav", rng.normal(0, 0.1, (32000, 2)).astype(np.float32), 32000)
    sf.write(tmp_path / "silent.flac", np.zeros(16000 * 2, np.float32), 16000)
    sf.write(tmp_path / "short.wav", rng.normal(0, 0.1, 1600).astype(np.float32), 16000)
    (tmp_path / "corrupt.wav").write_bytes(b"RIFF\x00\x00not really a wave file")
    pd.DataFrame({
        "file": ["good.wav", "good.wav", "silent.flac", "short.wav", "corrupt.wav", "absent.wav"],
        "caption": ["Noise,  loud!", "static hiss", "nothing", "a blip", "broken", "gone"],
        "split": ["train"] * 6,
    }).to_csv(tmp_path / "captions.csv", index=False)


def test_folder_prepare_reports_unreadable_files(tmp_path):
    _library(tmp_path)
    prepared = prepare_folder(str(tmp_path), name="lib")
    reasons = dict(zip(prepared.rejects["path"].map(lambda p: p.rsplit("/", 1)[-1]), prepared.rejects["reason"]))
    assert reasons == {"corrupt.wav": "corrupt", "absent.wav": "missing"}
    assert set(prepared.audio["audio_id"]) == {"lib/good", "lib/silent", "lib/short"}
    good = prepared.captions[prepared.captions["audio_id"] == "lib/good"]
    assert good["caption_id"].tolist() == ["lib/good#0", "lib/good#1"]
    assert good["text"].iloc[0] == "Noise, loud!"  # whitespace cleaned, wording kept
    write_tables(tmp_path / "tables", prepared.audio, prepared.captions)
    audio, captions = read_tables(tmp_path / "tables")
    assert len(audio) == 3 and len(captions) == 4


def test_bad_split_names_the_row(tmp_path):
    _library(tmp_path)
    df = pd.read_csv(tmp_path / "captions.csv")
    df.loc[2, "split"] = "dev"
    df.to_csv(tmp_path / "captions.csv", index=False)
    with pytest.raises(TableError, match="row 4 has split 'dev'"):
        prepare_folder(str(tmp_path))


def test_orphan_caption_is_refused(tmp_path):
    _library(tmp_path)
    p = prepare_folder(str(tmp_path), name="lib")
    captions = pd.concat([p.captions, p.captions.iloc[:1].assign(caption_id="x#0", audio_id="x")])
    with pytest.raises(TableError, match="unknown audio_id 'x'"):
        write_tables(tmp_path / "t", p.audio, captions)


def test_feature_cache_roundtrip_and_rejects(tmp_path):
    _library(tmp_path)
    p = prepare_folder(str(tmp_path), name="lib")
    cfg = FrontendConfig()
    rejects = build_cache(tmp_path / "cache", p.audio, cfg, min_duration=0.5, shard_bytes=1, workers=1)
    assert dict(zip(rejects["audio_id"], rejects["reason"])) == {"lib/silent": "silent", "lib/short": "too_short"}
    cache = SpectrogramCache(tmp_path / "cache", expect=cfg)
    expected = compute_logmel(load_audio(tmp_path / "good.wav", cfg.sample_rate), cfg)
    got = cache.get("lib/good")
    assert got.dtype == np.float16 and got.shape == (64, cfg.num_frames(32000 // 2))
    np.testing.assert_allclose(got.astype(np.float32), expected, atol=2e-2, rtol=1e-2)
    with pytest.raises(ValueError, match="expects"):
        SpectrogramCache(tmp_path / "cache", expect=FrontendConfig(n_mels=128))


def test_failed_cache_build_leaves_nothing(tmp_path):
    bad = pd.DataFrame({"audio_id": ["a"], "path": [123]})  # not a path: the worker raises TypeError
    with pytest.raises(TypeError):
        build_cache(tmp_path / "cache", bad, FrontendConfig(), workers=1)
    assert list(tmp_path.iterdir()) == []
