"""The log-mel cache (salsa2.features.logmel_cache): round trip, rejects with reasons, nothing half-written."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from salsa2.audio.decode import load_audio
from salsa2.audio.frontends import FrontendConfig, compute_logmel
from salsa2.data.datasets.folder import prepare_folder
from salsa2.features.logmel_cache import SpectrogramCache, build_cache
from helpers.file_server import folder_library


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


def test_feature_cache_roundtrip_and_rejects(tmp_path):
    folder_library(tmp_path)
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
