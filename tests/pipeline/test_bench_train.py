"""benchmarks/bench_train.py runs on CPU with a tiny configuration and reports a consistent step split."""

from __future__ import annotations

import math
import sys

import pytest

from helpers import REPO

sys.path.insert(0, str(REPO / "benchmarks"))

import bench_train  # noqa: E402


@pytest.mark.parametrize("text", ["features", "roberta-tiny"])
def test_bench_train_tiny_cpu(text, capsys):
    r = bench_train.main(["--encoder", "transformer", "--batch", "4", "--steps", "2", "--warmup", "1",
                          "--seconds", "1", "--text", text, "--device", "cpu", "--prefetch", "1"])
    assert r["processes"] == 1 and r["precision"] == "fp32" and r["sync_s"] == 0.0
    parts = r["data_s"] + r["forward_s"] + r["backward_s"] + r["sync_s"] + r["optimizer_s"]
    assert r["step_s"] == pytest.approx(parts) and r["forward_s"] > 0 and r["backward_s"] > 0
    assert r["clips_per_s"] == pytest.approx(4 / r["step_s"])
    steps = math.ceil(3839 * 5 / 4)
    assert r["clotho_run_h"] == pytest.approx(20 * steps * r["step_s"] / 3600)
    assert r["peak_gb"] > 0
    assert (r["trained_M"] > 5) == (text == "roberta-tiny")  # the random RoBERTa is trained with the audio side
    out = capsys.readouterr().out
    assert "clips/s" in out and "projected Clotho stage 1: 4799 steps/epoch" in out
