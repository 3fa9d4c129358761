"""Prepare throughput and spectrogram-cache size per hour of audio (docs/benchmarks.md).

    PYTHONPATH=src OMP_NUM_THREADS=1 python scripts/bench_prepare.py [--demo data/demo] [--clips 40]

Times the tables (header reads) and the log-mel cache for the demo frontend and a PaSST-like frontend,
on the demo folder (if given) and on generated 30 s, 44.1 kHz clips.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from salsa2.data.datasets.base import Clip, prepare_clips
from salsa2.data.datasets.folder import prepare_folder
from salsa2.features.logmel_cache import build_cache
from salsa2.audio.frontends import FrontendConfig

FRONTENDS = {
    "demo mel64 (16 kHz, 64 mel, hop 10 ms)": FrontendConfig(),
    "PaSST-like (32 kHz, 128 mel, hop 10 ms)": FrontendConfig(sample_rate=32000, n_fft=1024, win_length=800,
                                                               hop_length=320, n_mels=128, f_max=16000.0),
}


def bench(title: str, prepare, work: Path, workers: int) -> None:
    t = time.perf_counter()
    prepared = prepare()
    n, dt = len(prepared.audio), time.perf_counter() - t
    hours = prepared.audio["duration"].sum() / 3600
    print(f"{title}: tables {n} clips in {dt:.2f} s = {n / dt:.0f} clips/s ({hours:.2f} h of audio)")
    for name, cfg in FRONTENDS.items():
        t = time.perf_counter()
        build_cache(work / "cache", prepared.audio, cfg, workers=workers)
        dt = time.perf_counter() - t
        size = sum(f.stat().st_size for f in (work / "cache").iterdir()) / 2**20
        print(f"  {name}: {n / dt:.2f} clips/s ({hours * 3600 / dt:.0f}x real time), "
              f"{size:.1f} MiB = {size / hours:.1f} MiB per hour of audio")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--demo", type=Path, default=None, help="the demo folder (data/demo)")
    ap.add_argument("--clips", type=int, default=40, help="generated 30 s clips")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if args.demo:
            bench(f"demo ({args.demo})", lambda: prepare_folder(str(args.demo), name="demo"), work, args.workers)
        rng = np.random.default_rng(0)
        for i in range(args.clips):
            sf.write(work / f"{i}.wav", (0.1 * rng.standard_normal(30 * 44100)).astype(np.float32), 44100,
                     subtype="PCM_16")
        clips = [Clip(f"gen/{i}", "train", work / f"{i}.wav", ["noise"]) for i in range(args.clips)]
        bench(f"{args.clips} generated 30 s clips", lambda: prepare_clips(clips, "gen", "generated"), work,
              args.workers)


if __name__ == "__main__":
    main()
