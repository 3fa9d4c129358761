"""How the defaults of moment search were chosen: window, hop and moment method on a long-recording set built
from the demo's validation clips (the test clips make the demo DAG's moment evaluation; tuning on them would
report a tuned test score).

    PYTHONPATH=src python benchmarks/moment_defaults.py [--demo data/demo] [--models models/stage2/cnn ...]

Builds ``salsa2.moments.demo.build_long_demo(split="val")`` (12 recordings of 60-300 s, 2-5 clips each) in a
temporary folder, scores every query's windows for each (window, hop) and model (``moments.evaluate``), and
prints R1@0.5, R1@0.7 and mAP (DCASE 2026 task 6's metrics, ``moments.metrics``) of the models' ensemble and
their mean over the models, for each window/hop with the default method, then for the method parameters at the
chosen window/hop.
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
import time
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--demo", type=Path, default=Path("data/demo"))
    ap.add_argument("--models", type=Path, nargs="+", default=[Path("models/stage2/cnn"),
                                                               Path("models/stage2/transformer")])
    ap.add_argument("--recordings", type=int, default=12)
    ap.add_argument("--windows", type=float, nargs="+", default=[2.0, 4.0, 8.0])
    ap.add_argument("--hops", type=float, nargs="+", default=[2.0], help="other hops, at the best window")
    args = ap.parse_args()
    from salsa2.moments.data import ground_truth, read_moments
    from salsa2.moments.demo import build_long_demo
    from salsa2.moments.detect import DEFAULT_METHOD, method_params
    from salsa2.moments.evaluate import ensemble_scores, query_moments, score_windows
    from salsa2.moments.metrics import moment_metrics

    tmp = Path(tempfile.mkdtemp(prefix="moment_defaults_"))
    build_long_demo(args.demo, tmp / "long", recordings=args.recordings, min_clips=2, max_clips=5, split="val")
    queries = read_moments(tmp / "long" / "moments.jsonl")
    truth = ground_truth(queries)
    audio = tmp / "long" / "audio"
    seconds = sum(q.duration for q in {q.vid: q for q in queries}.values())
    print(f"{len({q.vid for q in queries})} recordings ({seconds / 60:.0f} min), {len(queries)} queries")

    def metrics(scores: dict, method: str, params: dict) -> dict:
        preds = {qid: [[m.start, m.end, m.score] for m in query_moments(s, method, params)]
                 for qid, s in scores.items()}
        return moment_metrics(preds, truth)

    def line(label: str, per_model: list[dict], ens: dict) -> str:
        mean = {k: float(np.mean([m[k] for m in per_model])) for k in ("R1@0.5", "R1@0.7", "mAP")}
        return (f"| {label} | {ens['R1@0.5']:.1f} | {ens['R1@0.7']:.1f} | {ens['mAP']:.1f} | "
                f"{mean['R1@0.5']:.1f} | {mean['R1@0.7']:.1f} | {mean['mAP']:.1f} |")

    header = ("| {} | ensemble R1@0.5 | R1@0.7 | mAP | mean of models R1@0.5 | R1@0.7 | mAP |\n"
              "|---|---|---|---|---|---|---|")
    default = method_params(DEFAULT_METHOD)
    cache = {}
    print(f"\nwindow / hop, method {DEFAULT_METHOD} with its defaults:\n" + header.format("window, hop (s)"))
    for window, hop in [(w, 1.0) for w in args.windows] + [(None, h) for h in args.hops if h != 1.0]:
        if window is None:  # hops at the best window so far
            window = max((k for k in cache if k[1] == 1.0), key=lambda k: cache[k][2]["mAP"])[0]
        t = time.time()
        per = [score_windows(m, queries, audio, window, hop) for m in args.models]
        ens = ensemble_scores(per)
        per_m = [metrics(s, DEFAULT_METHOD, default) for s in per]
        cache[(window, hop)] = (per, ens, metrics(ens, DEFAULT_METHOD, default))
        print(line(f"{window:g}, {hop:g} ({time.time() - t:.0f} s)", per_m, cache[(window, hop)][2]), flush=True)
    best = max(cache, key=lambda k: cache[k][2]["mAP"])
    per, ens, _ = cache[best]
    grids = {
        "threshold": {"smooth": [0.0, 2.0, 4.0], "z": [0.5, 1.0, 1.5], "extent": ["window", "centre"]},
        "nms": {"smooth": [0.0, 2.0], "iou": [0.0, 0.3, 0.5]},
    }
    print(f"\nmethods at window {best[0]:g} s, hop {best[1]:g} s:\n" + header.format("method, params"))
    for method, grid in grids.items():
        for values in itertools.product(*grid.values()):
            params = {**method_params(method), **dict(zip(grid, values))}
            label = f"{method} " + ", ".join(f"{k}={v}" for k, v in zip(grid, values))
            print(line(label, [metrics(s, method, params) for s in per], metrics(ens, method, params)), flush=True)


if __name__ == "__main__":
    main()
