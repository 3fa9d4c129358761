"""Query latency of exact search for 10k and 100k indexed clips (synthetic embeddings), printed as a table.

    PYTHONPATH=src python benchmarks/bench_search.py [--model models/stage2/cnn] [--dim 256] [--threads 1]

Measures, per index size: one query (top-10, median of repeats) with salsa2.search.query.top_k (blocked numpy
matmul), the same for a 2-model ensemble, a batch of 100 queries (per query), faiss IndexFlatIP (exact, the
same result) for comparison, and reading the Parquet index from disk. With ``--model`` it also times
embedding one text query with that checkpoint (the part of a CLI search that is not the matrix product).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from timing import median_ms  # sets the BLAS threads from --threads: import before numpy

import numpy as np
import pandas as pd


def _unit(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    x = rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--dim", type=int, default=256)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--threads", type=int, default=1, help="BLAS/torch threads")
    ap.add_argument("--model", type=Path, default=None, help="a checkpoint, to time text-query embedding")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    from salsa2.search.index import Index, read_index, write_index
    from salsa2.search.query import top_k

    rng = np.random.default_rng(0)
    rows = []
    for n in args.sizes:
        items = _unit(rng, n, args.dim)
        items2 = _unit(rng, n, args.dim)
        q = _unit(rng, 1, args.dim)
        q2 = _unit(rng, 1, args.dim)
        batch = _unit(rng, 100, args.dim)
        one = median_ms(lambda: top_k(q, items, args.k), args.repeats)
        ens = median_ms(lambda: top_k([q, q2], [items, items2], args.k), args.repeats)
        many = median_ms(lambda: top_k(batch, items, args.k), max(3, args.repeats // 10)) / len(batch)
        try:
            import faiss

            faiss.omp_set_num_threads(args.threads)
            flat = faiss.IndexFlatIP(args.dim)
            flat.add(items)
            assert (flat.search(q, args.k)[1] == top_k(q, items, args.k)[1]).all()
            fa = median_ms(lambda: flat.search(q, args.k), args.repeats)
        except ImportError:
            fa = float("nan")
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "index.parquet"
            files = pd.DataFrame({"path": [f"clip_{i:06d}.flac" for i in range(n)], "duration": 10.0,
                                  "size": 1, "mtime_ns": 1})
            write_index(Index(Path(tmp), files, {"m": items}, {"m": {"path": "", "id": "", "embed_dim": args.dim,
                                                                     "info": {}}}), path)
            size_mb = path.stat().st_size / 2**20
            load = median_ms(lambda: read_index(path), 3)
        rows.append({"clips": n, "dim": args.dim, "1 query ms": one, "ensemble(2) ms": ens,
                     "batch100 ms/query": many, "faiss flat ms": fa, "load index ms": load, "index MB": size_mb})
    print(f"exact top-{args.k}, float32, {args.threads} thread(s), {os.cpu_count()} CPUs on this machine")
    print(pd.DataFrame(rows).to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    if args.model is not None:
        from salsa2.search.inference import embed_text, load_model

        t = time.perf_counter()
        model = load_model(args.model)
        loaded = time.perf_counter() - t
        ms = median_ms(lambda: embed_text(model, ["a dog barks while cars pass"]), args.repeats)
        print(f"{args.model}: load {loaded:.1f} s; embed one text query {ms:.1f} ms")


if __name__ == "__main__":
    main()
