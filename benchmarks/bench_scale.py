"""Scale benchmark (not a test): training throughput, soft-target building, evaluation at Clotho size.

    PYTHONPATH=src python benchmarks/bench_scale.py [--sizes 50000 400000] [--skip-train] [--work-dir DIR]

Prints, on this machine:
1. training throughput (clips/s) of each demo audio encoder: forward + backward + Adam on batches of 32
   ten-second clips with cached (frozen) text features, NT-Xent;
2. for N synthetic clips and N captions (D = 1024, M = 3 members): time and peak RSS to build the
   embedding targets from the members' dumps (a fresh process each, so RSS is the build's own), the
   time for one batch block of C-hat (64 clips x 64 captions), and what the dense path would need
   (A x T float32 bytes; time extrapolated from a 256 x 20k block);
3. evaluation time at Clotho's size (1045 clips x 5225 captions, D = 1024) for one model and for a
   3-model score-averaged ensemble, blockwise (peak memory O(block x N)).
The synthetic dumps take 2 x M x N x D x 4 bytes on disk (9.8 GB for N = 400k) plus as much for the
targets; they are written under --work-dir (default: a temporary directory, removed at the end).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

D, M, BATCH = 1024, 3, 64


def _status_gb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024**2
    return float("nan")


def _rss_gb() -> float:
    """This process's peak resident set (VmHWM; unlike ru_maxrss it does not inherit the parent's at spawn)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024**2
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


# ------------------------------------------------------------------------------------------------ training
def bench_training(steps: int = 6, batch: int = 32, seconds: float = 10.0) -> None:
    import torch
    from torch import nn

    from salsa2.config.params import load_params
    from salsa2.audio.frontends import FrontendConfig
    from salsa2.training.losses import LOSSES
    from salsa2.model.dual_encoder import DualEncoder, ModelConfig

    class CachedText(nn.Module):  # frozen text encoder: the demo reads cached 384-d MiniLM features
        out_dim, frozen = 384, True

    raw = load_params(Path(__file__).resolve().parents[1] / "params.yaml")
    frontend = FrontendConfig(**raw["frontends"]["mel64"])
    encoders = {e["arch"]: e.get("kwargs", {}) for e in raw["audio_encoders"].values()}
    encoders.setdefault("small_mobilenet2d", {"width": 1.0, "out_dim": 256})
    frames = int(seconds * frontend.frames_per_second)
    print(f"\n[1] training throughput: batch {batch} x {seconds:.0f} s clips ({frames} frames), NT-Xent, "
          f"fp32, {torch.get_num_threads()} CPU threads")
    for arch, kwargs in encoders.items():
        torch.manual_seed(0)
        model = DualEncoder(ModelConfig(arch, frontend, "cached", raw["embed_dim"], kwargs), text_encoder=CachedText())
        loss_fn = LOSSES.build("nt_xent")
        opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-4)
        mel = torch.randn(batch, frontend.n_mels, frames) * 5 - 4.5
        lengths = torch.full((batch,), frames)
        feats = torch.randn(batch, 384)
        positives = torch.eye(batch, dtype=torch.bool)
        model.train()
        times = []
        for i in range(steps + 1):
            t0 = time.perf_counter()
            sim = model.encode_audio(mel, lengths) @ model.encode_text_features(feats).T
            loss = loss_fn(sim, positives)["nt_xent_loss"]
            opt.zero_grad()
            loss.backward()
            opt.step()
            if i:  # the first step warms up allocators
                times.append(time.perf_counter() - t0)
        n_params = sum(p.numel() for p in model.audio_encoder.parameters()) / 1e6
        print(f"  {arch:<18} {n_params:5.2f} M params  {batch / np.median(times):7.1f} clips/s  "
              f"({np.median(times) * 1000:.0f} ms/step, median of {steps})")


# ------------------------------------------------------------------------------------------------ targets
def _write_member(path: Path, n: int, seed: int, chunk: int = 16384) -> None:
    from salsa2.utils.npz import write_npz

    rng = np.random.default_rng(seed)

    def rows():
        for s in range(0, n, chunk):
            x = rng.standard_normal((min(chunk, n - s), D), dtype=np.float32)
            yield x / np.linalg.norm(x, axis=1, keepdims=True)

    with write_npz(path) as w:
        w.add("audio_ids", np.array([f"clip{i:07d}" for i in range(n)]))
        w.add("caption_ids", np.array([f"clip{i:07d}#0" for i in range(n)]))
        w.add_rows("audio_emb", (n, D), np.float32, rows())
        w.add_rows("text_emb", (n, D), np.float32, rows())


def _build(paths: list[str], out: str, queue) -> None:
    from salsa2.distill.targets import build_targets

    base = _rss_gb()  # the interpreter with numpy and torch imported
    t0 = time.perf_counter()
    build_targets(paths, out, [f"m{i}" for i in range(len(paths))], "embeddings")
    queue.put((time.perf_counter() - t0, _rss_gb(), base, _status_gb("RssAnon")))


def _blocks(out: str, n: int, queue) -> None:
    from salsa2.distill.targets import TeacherTargets

    ids = [f"clip{i:07d}" for i in range(n)]
    t0 = time.perf_counter()
    teacher = TeacherTargets(out, ids, [f"{a}#0" for a in ids])
    load = time.perf_counter() - t0
    rng = np.random.default_rng(0)
    times = []
    for _ in range(50):
        rows = rng.choice(n, BATCH, replace=False)
        t0 = time.perf_counter()
        teacher.block(rows, rows)
        times.append(time.perf_counter() - t0)
    queue.put((load, float(np.median(times)), float(np.mean(times)), _rss_gb(), _status_gb("RssAnon"),
               _status_gb("RssFile")))


def _in_fresh_process(target, *args):
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=target, args=(*args, queue))
    proc.start()
    result = queue.get()
    proc.join()
    return result


def bench_targets(sizes: list[int], work: Path) -> None:
    from salsa2.distill.ensemble import mean_block

    print(f"\n[2] soft targets from embeddings: N clips = N captions, D = {D}, M = {M}; "
          f"blocks of {BATCH} x {BATCH}")
    for n in sizes:
        d = work / f"n{n}"
        d.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        paths = [d / f"member{m}.npz" for m in range(M)]
        for m, p in enumerate(paths):
            _write_member(p, n, seed=m)
        gen = time.perf_counter() - t0
        out = d / "targets.npz"
        build_s, build_rss, base_rss, _ = _in_fresh_process(_build, [str(p) for p in paths], str(out))
        load_s, block_med, block_mean, block_rss, block_anon, block_file = _in_fresh_process(_blocks, str(out), n)
        size_gb = out.stat().st_size / 1e9
        # the dense path: time a 256 x 20k block of the mean similarity, extrapolate to A x T
        from salsa2.distill.members import load_embeddings

        members = [load_embeddings(p) for p in paths]
        cols = min(n, 20_000)
        t0 = time.perf_counter()
        mean_block([m.audio_emb for m in members], [m.text_emb for m in members], slice(0, 256), slice(0, cols))
        dense_s = (time.perf_counter() - t0) * (n / 256) * (n / cols)
        del members
        print(f"  N = {n:>7,}: synthetic dumps written in {gen:.0f} s ({3 * 2 * n * D * 4 / 1e9:.1f} GB)")
        print(f"    embeddings path: build {build_s:.1f} s, peak RSS {build_rss:.2f} GB "
              f"({base_rss:.2f} GB of it imports), targets file "
              f"{size_gb:.1f} GB")
        print(f"    training-time blocks: open {load_s:.2f} s; one block {block_med * 1000:.2f} ms median "
              f"({block_mean * 1000:.2f} ms mean over 50, cold pages included); peak RSS {block_rss:.2f} GB, at "
              f"the end {block_anon:.2f} GB anonymous + {block_file:.2f} GB mapped page cache (reclaimable)")
        print(f"    dense path would need: {n * n * 4 / 1e9:,.1f} GB for the float32 A x T matrix, "
              f"~{dense_s / 60:.0f} min to compute on this machine")
        shutil.rmtree(d)


# ---------------------------------------------------------------------------------------------- evaluation
def bench_evaluation(n_audio: int = 1045, per_clip: int = 5) -> None:
    from salsa2.evaluation.metrics import bidirectional_metrics, embedding_scores, mean_scores

    rng = np.random.default_rng(0)
    audio_ids = [f"clip{i}" for i in range(n_audio)]
    caption_audio = [a for a in audio_ids for _ in range(per_clip)]

    def member():
        a = rng.standard_normal((n_audio, D), dtype=np.float32)
        t = np.repeat(a, per_clip, axis=0) + 8 * rng.standard_normal((n_audio * per_clip, D), dtype=np.float32)
        return (a / np.linalg.norm(a, axis=1, keepdims=True), t / np.linalg.norm(t, axis=1, keepdims=True))

    members = [member() for _ in range(3)]
    print(f"\n[3] evaluation at Clotho size: {n_audio} clips x {n_audio * per_clip} captions, D = {D}, blocks of 512")
    t0 = time.perf_counter()
    one = bidirectional_metrics(embedding_scores(*members[0]), audio_ids, caption_audio)
    t1 = time.perf_counter()
    ens = bidirectional_metrics(mean_scores([embedding_scores(a, t) for a, t in members]), audio_ids, caption_audio)
    t2 = time.perf_counter()
    print(f"  one model: {t1 - t0:.1f} s (t2a mAP@10 {one['t2a/mAP@10']:.3f}); 3-model ensemble: {t2 - t1:.1f} s "
          f"(t2a mAP@10 {ens['t2a/mAP@10']:.3f}); process peak RSS so far {_rss_gb():.2f} GB")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="*", default=[50_000, 400_000])
    ap.add_argument("--skip-train", action="store_true")
    ap.add_argument("--work-dir", type=Path, default=None)
    args = ap.parse_args()
    import torch

    print(f"salsa2 scale benchmark: torch {torch.__version__}, CUDA available: {torch.cuda.is_available()}")
    if not args.skip_train:
        bench_training()
    bench_evaluation()
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="salsa2-bench-"))
    try:
        bench_targets(args.sizes, work)
    finally:
        if args.work_dir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
