"""Peak memory of per-window embeddings for a two-hour recording (salsa2.moments.windows.window_embeddings).

    /usr/bin/time -v python benchmarks/moment_memory.py --model models/stage2/cnn [--hours 2] [--file F.flac]

Writes (unless ``--file`` exists) a 16 kHz FLAC of the demo's test clips separated by 5-60 s of quiet noise,
``hours`` long, then embeds its windows (4 s every 1 s by default) and prints the number of windows, the time, and
the peak resident set size of the process before and after (``ru_maxrss``: Python, torch and the model included;
``/usr/bin/time -v`` reports the same as "Maximum resident set size").
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf


def write_long_recording(path: Path, demo: Path, hours: float, seed: int = 0) -> None:
    files = sorted((demo / "audio" / "test").glob("*.flac"))
    rng = np.random.default_rng(seed)
    target, n, i = int(hours * 3600 * 16000), 0, 0
    with sf.SoundFile(path, "w", 16000, 1, subtype="PCM_16") as f:
        while n < target:
            wav, sr = sf.read(files[i % len(files)], dtype="float32")
            i += 1
            gap = (0.01 * rng.standard_normal(int(rng.uniform(5, 60) * sr))).astype(np.float32)
            chunk = np.concatenate([gap, wav])[: target - n]
            f.write(chunk)
            n += len(chunk)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=Path("models/stage2/cnn"))
    ap.add_argument("--demo", type=Path, default=Path("data/demo"))
    ap.add_argument("--hours", type=float, default=2.0)
    ap.add_argument("--file", type=Path, default=None)
    ap.add_argument("--window", type=float, default=None)
    ap.add_argument("--hop", type=float, default=None)
    args = ap.parse_args()
    path = args.file or Path(tempfile.mkdtemp(prefix="moment_memory_")) / "long.flac"
    if not path.exists():
        write_long_recording(path, args.demo, args.hours)
    from salsa2.moments.windows import DEFAULT_HOP, DEFAULT_WINDOW, window_embeddings
    from salsa2.search.inference import load_model

    model = load_model(args.model)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t = time.time()
    win = window_embeddings(model, path, args.window or DEFAULT_WINDOW, args.hop or DEFAULT_HOP)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{path}: {sf.info(path).duration / 3600:.2f} h, {len(win)} windows of {args.window or DEFAULT_WINDOW:g} s "
          f"every {args.hop or DEFAULT_HOP:g} s, {time.time() - t:.0f} s; peak RSS {before:.0f} MB after loading the "
          f"model, {peak:.0f} MB after the windows")


if __name__ == "__main__":
    main()
