"""Share of demo test captions whose own clip a search of the indexed test folder puts in the top k.

    PYTHONPATH=src python benchmarks/search_demo_share.py data/demo models/stage2/cnn [more checkpoints] [--k 10]

Indexes DEMO/audio/test with the checkpoints (into a temporary file; several = an ensemble), then queries every test caption of
DEMO/captions.csv through the same path as ``salsa2 search`` (text normalised as trained, exact top-k).
Also prints the multi-relevance share: a hit counts when it holds every event the caption mentions
(relevance_test.csv).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("demo", type=Path)
    ap.add_argument("checkpoints", type=Path, nargs="+")
    ap.add_argument("--k", type=int, default=10)
    args = ap.parse_args()
    from salsa2.search.index import build_index, read_index
    from salsa2.search.inference import embed_text, load_model
    from salsa2.search.query import top_k

    models = [load_model(c, f"{c.parent.name}-{c.name}") for c in args.checkpoints]
    with tempfile.TemporaryDirectory() as tmp:
        t = time.time()
        report = build_index(args.demo / "audio" / "test", Path(tmp) / "test.parquet", models)
        print(f"index: {report.summary()}")
        index = read_index(Path(tmp) / "test.parquet")
    caps = pd.read_csv(args.demo / "captions.csv")
    caps = caps[caps["split"] == "test"].reset_index(drop=True)
    t = time.time()
    queries = [embed_text(m, caps["caption"].tolist()) for m in models]
    _, rows = top_k(queries, [index.embeddings[m.name] for m in models], args.k)
    elapsed = time.time() - t
    row_of = {f"audio/test/{p}": i for i, p in enumerate(index.files["path"])}
    own = caps["file"].map(row_of).to_numpy()
    share = float((rows == own[:, None]).any(axis=1).mean())
    rel = pd.read_csv(args.demo / "relevance_test.csv")
    relevant = [{row_of[f] for f in r.split(";")} for r in rel["relevant"]]
    top1_relevant = float(np.mean([rows[i, 0] in relevant[i] for i in range(len(rel))]))
    print(f"{'+'.join(m.name for m in models)}: {len(caps)} test captions, {len(index)} clips: own clip in the top {args.k} for {share:.4f} "
          f"(chance {args.k / len(index):.3f}); top-1 hit holds all mentioned events for {top1_relevant:.4f}; "
          f"{1000 * elapsed / len(caps):.1f} ms a query (text embedding + search, batched)")


if __name__ == "__main__":
    main()
