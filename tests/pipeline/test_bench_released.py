"""benchmarks/bench_released.py runs on CPU with a short clip and a one-layer RoBERTa and projects the Clotho
evaluation time from its own per-clip and per-caption figures."""

from __future__ import annotations

import json
import sys

import pytest

from helpers import REPO

sys.path.insert(0, str(REPO / "benchmarks"))

import bench_released  # noqa: E402


@pytest.mark.slow  # PaSST and RoBERTa-large's embedding table are built at their real size
def test_bench_released_tiny_cpu(capsys):
    r = bench_released.main(["--seconds", "2", "--clips", "2", "--captions", "4", "--repeat", "1",
                             "--text-layers", "1"])
    assert r["device"] == "cpu" and r["mel_frames"] == 2 * 100 + 2  # 10 ms hop, frames past the end
    per_clip = r["logmel_s_per_clip"] + min(r["audio_s_per_clip_batch1"], r["audio_s_per_clip_batch2"])
    assert r["clotho_eval_minutes"] == pytest.approx((1045 * per_clip + 5225 * r["text_s_per_caption_batch4"]) / 60)
    assert all(v > 0 for k, v in r.items() if k.endswith(("_clip", "_caption", "batch1", "batch2", "batch4")))
    assert json.loads(capsys.readouterr().out)["mel_frames"] == r["mel_frames"]
