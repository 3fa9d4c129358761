"""Moment search at scale: query latency and memory of the window index for many hours of audio (synthetic).

    PYTHONPATH=src python benchmarks/bench_moments.py [--hours 1000] [--hop 1.0] [--dim 256] [--threads 1]
        [--file-minutes 60] [--ivf]

Builds a window index of ``hours`` of audio at the given hop (one window every ``hop`` seconds; 1,000 h at 1 s
= 3.6 M windows) from synthetic unit embeddings with the temporal structure of real ones: each file is a random
walk, neighbouring windows correlated, drawn around one of 256 "sound" centres. Measures, for one text query
(the text embedding itself not included; ``bench_search.py --model`` times it):

- exact: what ``salsa2 search --moments`` does (``salsa2.moments.moment_search``): every window scored by a
  blocked numpy matrix product (``window_scores``), then the files' moments ranked with the early stop
  (``rank_moments``, method ``threshold``, top 10);
- with ``--ivf`` (faiss-cpu, the ``bench`` extra): a faiss ``IndexIVFFlat`` (inner product) returns the top
  ``--candidates`` windows; only their files are scored exactly and ranked. Recall = share of the exact top-10
  moments it returns; build time (training + adding) reported too.

Memory of the window index: float32 embeddings (``4 * D`` bytes per window) plus start and end (16 bytes).
"""

from __future__ import annotations

import argparse
import time

from timing import median_ms  # sets the BLAS threads from --threads: import before numpy

import numpy as np  # noqa: E402 - after the thread settings


def synthetic_windows(n_files: int, per_file: int, dim: int, hop: float, window: float, seed: int = 0):
    """A WindowTable of n_files files of per_file windows: random walks around random centres, unit norm."""
    from salsa2.search.index import WindowTable

    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((256, dim), dtype=np.float32)
    n = n_files * per_file
    emb = np.empty((n, dim), np.float32)
    for f in range(n_files):
        steps = rng.standard_normal((per_file, dim), dtype=np.float32) * 0.15
        walk = np.cumsum(steps, axis=0) / np.sqrt(np.arange(1, per_file + 1, dtype=np.float32))[:, None]
        pick = rng.integers(0, len(centres), per_file // 60 + 1).repeat(60)[:per_file]  # a sound per minute
        x = centres[pick] + walk
        emb[f * per_file : (f + 1) * per_file] = x / np.linalg.norm(x, axis=1, keepdims=True)
    starts = np.tile(np.arange(per_file) * hop, n_files).astype(np.float64)
    offsets = np.arange(n_files + 1, dtype=np.int64) * per_file
    return WindowTable(window, hop, offsets, starts, starts + window, {"m": emb}), centres


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hours", type=float, default=1000.0)
    ap.add_argument("--hop", type=float, default=None, help="seconds [default: salsa2's DEFAULT_HOP]")
    ap.add_argument("--window", type=float, default=None, help="seconds [default: salsa2's DEFAULT_WINDOW]")
    ap.add_argument("--dim", type=int, default=256)
    ap.add_argument("--file-minutes", type=float, default=60.0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--ivf", action="store_true", help="also time a faiss IVF index (pip install faiss-cpu)")
    ap.add_argument("--nlist", type=int, default=4096)
    ap.add_argument("--nprobe", type=int, nargs="+", default=[8, 32])
    ap.add_argument("--candidates", type=int, default=200)
    args = ap.parse_args()
    from salsa2.moments.moment_search import rank_moments, window_scores
    from salsa2.moments.windows import DEFAULT_HOP, DEFAULT_WINDOW
    from salsa2.search.index import WindowTable

    hop = args.hop or DEFAULT_HOP
    window = args.window or DEFAULT_WINDOW
    per_file = int(args.file_minutes * 60 / hop)
    n_files = max(1, round(args.hours * 60 / args.file_minutes))
    t = time.perf_counter()
    win, centres = synthetic_windows(n_files, per_file, args.dim, hop, window)
    emb = win.embeddings["m"]
    n = len(win)
    print(f"{n_files} files x {per_file} windows = {n:,} windows ({args.hours:g} h at hop {hop:g} s, window "
          f"{window:g} s, D = {args.dim}); built in {time.perf_counter() - t:.0f} s", flush=True)
    bytes_per_hour = (emb.nbytes + win.starts.nbytes + win.ends.nbytes) / args.hours
    print(f"window index in memory: {emb.nbytes / 2**30:.2f} GiB embeddings, {bytes_per_hour / 2**20:.2f} MiB per "
          "hour of audio", flush=True)
    rng = np.random.default_rng(1)
    q = centres[7] + 0.5 * rng.standard_normal(args.dim).astype(np.float32)
    q = (q / np.linalg.norm(q))[None].astype(np.float32)

    def exact() -> list:
        return rank_moments(win, window_scores([q], [emb]), 10)

    truth = exact()
    ms = median_ms(exact, args.repeats)
    ms_scores = median_ms(lambda: window_scores([q], [emb]), args.repeats)
    rows = [("exact (numpy, blocked)", f"{ms:.0f}", f"{ms_scores:.0f}", "1.00", "-")]
    if args.ivf:
        import faiss

        faiss.omp_set_num_threads(args.threads)
        t = time.perf_counter()
        quantizer = faiss.IndexFlatIP(args.dim)
        ivf = faiss.IndexIVFFlat(quantizer, args.dim, args.nlist, faiss.METRIC_INNER_PRODUCT)
        sample = emb[rng.choice(n, min(n, 40 * args.nlist), replace=False)]
        ivf.train(sample)
        for s in range(0, n, 1_000_000):
            ivf.add(emb[s : s + 1_000_000])
        build = time.perf_counter() - t
        file_of = win.file_rows()
        want = {(row, m.start) for m, row in truth}
        for nprobe in args.nprobe:
            ivf.nprobe = nprobe

            def approximate() -> list:
                _, ids = ivf.search(q, args.candidates)
                files = np.unique(file_of[ids[0][ids[0] >= 0]])
                parts = [(win.offsets[f], win.offsets[f + 1]) for f in files]
                scores = np.concatenate([emb[a:b] @ q[0] for a, b in parts])  # the candidate files, exactly
                bounds = np.concatenate([np.arange(a, b) for a, b in parts])
                lengths = np.array([b - a for a, b in parts])
                sub = WindowTable(window, hop, np.concatenate([[0], np.cumsum(lengths)]), win.starts[bounds],
                                  win.ends[bounds], {})
                return [(m, int(files[r])) for m, r in rank_moments(sub, scores, 10)]

            got = approximate()
            recall = len(want & {(row, m.start) for m, row in got}) / max(1, len(want))
            ms_ivf = median_ms(approximate, args.repeats)
            rows.append((f"faiss IVF{args.nlist},Flat nprobe {nprobe} + exact rescoring", f"{ms_ivf:.0f}", "-",
                         f"{recall:.2f}", f"{build:.0f}"))
    print(f"\none query, top-10 moments, {args.threads} thread(s):")
    print("| search | latency (ms) | window scores alone (ms) | recall of the exact top-10 | index build (s) |")
    print("|---|---|---|---|---|")
    for r in rows:
        print("| " + " | ".join(r) + " |")


if __name__ == "__main__":
    main()
