"""Training-step benchmark (not a test): clips/s, the step split, peak memory, projected Clotho stage 1.

    PYTHONPATH=src python benchmarks/bench_train.py --preset params-paper.yaml --encoder passt --batch 64
    torchrun --standalone --nproc-per-node 4 benchmarks/bench_train.py --preset params-paper.yaml --encoder passt
    PYTHONPATH=src python benchmarks/bench_train.py --encoder transformer --batch 8 --seconds 10   # the demo

It builds the preset's dual encoder for ``--encoder`` with random audio weights (``weights: none``: no download)
and trains it on synthetic log-mels of ``--seconds`` with the training loop's own set-up and step
(``salsa2.training.loop.start_run``, ``train_step``): the preset's stage-1 optimizer groups, schedule and gradient
clipping, the prefetch loader (``salsa2.training.loader``), DDP over the processes of a ``torchrun`` job with the
gathered global batch (``salsa2.training.distributed``), autocast (``salsa2.training.amp``, ``--precision auto``),
optional ``torch.compile``; no augmentation, no crop (``max_seconds`` 0). Text side (``--text``): ``features`` =
frozen cached sentence features (the demo), or a randomly initialised, trained RoBERTa on random token ids:
``roberta-large`` (355 M, the paper's) or ``roberta-tiny`` (4 layers, width 256, for machines that cannot run the
large one). Layout: pairs, so a global batch holds ``--batch`` clips and ``--batch`` captions (the authors' layout).

The step time is split into data wait (the loader's queue), forward (encoders, gather, loss), backward,
gradient sync and optimizer; on CUDA each phase ends with a synchronize. DDP all-reduces during backward;
the sync share is measured as the backward time of synced steps minus that of ``no_sync`` steps (timed
alternately), i.e. the communication the backward does not hide. Peak memory: the device's
``max_memory_allocated`` on CUDA, the process's peak RSS on CPU. The projection: Clotho development set,
3839 clips x 5 captions = 19195 pairs, ``ceil(19195 / batch)`` steps an epoch, ``--epochs`` 20 (the authors'
``max_epochs=20``, batch 64); validation time is not included.
"""

from __future__ import annotations

import argparse
import math
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

CLOTHO_PAIRS = 3839 * 5
PAPER_EPOCHS = 20


def _peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


class RandomFeatures:
    """Random cached caption features, looked up by caption id (as ``TextFeatureStore.lookup``)."""

    def __init__(self, caption_ids: list[str], features: np.ndarray) -> None:
        self.row = {c: i for i, c in enumerate(caption_ids)}
        self.features = features

    def lookup(self, caption_ids: list[str]) -> np.ndarray:
        return self.features[[self.row[c] for c in caption_ids]]


def _text_encoder(kind: str, features_dim: int, max_length: int):
    """A text tower for the benchmark: frozen cached features, or a random-init RoBERTa whose "tokenizer" reads a
    caption as its space-separated token ids."""
    import torch
    from torch import nn

    class CachedFeatures(nn.Module):
        out_dim = features_dim
        frozen = True

    if kind == "features":
        return CachedFeatures()
    from transformers import RobertaConfig, RobertaModel

    shape = ({"hidden_size": 1024, "num_hidden_layers": 24, "num_attention_heads": 16, "intermediate_size": 4096}
             if kind == "roberta-large" else
             {"hidden_size": 256, "num_hidden_layers": 4, "num_attention_heads": 4, "intermediate_size": 1024})
    config = RobertaConfig(vocab_size=50265, max_position_embeddings=max_length + 2, type_vocab_size=1,
                           pad_token_id=1, **shape)

    class RandomRoberta(nn.Module):
        frozen = False

        def __init__(self) -> None:
            super().__init__()
            self.model = RobertaModel(config, add_pooling_layer=False)
            self.out_dim = config.hidden_size

        def forward(self, ids: torch.Tensor) -> torch.Tensor:
            return self.model(input_ids=ids).last_hidden_state[:, 0]  # cls pooling (RoBERTa's in salsa2)

        def encode(self, texts: list[str]) -> torch.Tensor:
            ids = torch.tensor([[int(w) for w in t.split()] for t in texts])
            return self(ids.to(self.model.embeddings.word_embeddings.weight.device))

    return RandomRoberta()


def build(args):
    """(model, loss_fn, training data, cached text features or None, params) for the benchmark."""
    import torch

    from salsa2.config.params import load_params, training_params
    from salsa2.features.splits import RetrievalData
    from salsa2.features.logmel_cache import MemoryCache
    from salsa2.training.losses import LOSSES
    from salsa2.model.dual_encoder import DualEncoder
    from salsa2.training.two_stage import model_config
    from salsa2.config.presets import apply

    root = Path(__file__).resolve().parents[1]
    raw = load_params(root / "params.yaml")
    if args.preset:
        raw = apply(load_params(args.preset), raw)
    enc = raw["audio_encoders"][args.encoder]
    enc["kwargs"] = {**enc.get("kwargs", {}), **({"weights": "none"} if "weights" in enc.get("kwargs", {}) else {})}
    params = training_params(raw)
    cfg = model_config(params, args.encoder)
    torch.manual_seed(0)
    text = _text_encoder(args.text, 384 if params.text.model == "minilm" else 1024, params.text.max_length)
    model = DualEncoder(cfg, text_encoder=text)
    rng = np.random.default_rng(0)
    frames = int(args.seconds * cfg.frontend.frames_per_second)
    n_clips = args.batch * (args.steps + args.warmup)
    ids = [f"c{i}" for i in range(n_clips)]
    caption_ids = [f"{a}#0" for a in ids]
    proto = (rng.normal(size=(cfg.frontend.n_mels, frames)) - 4.5).astype(np.float16)  # one clip, shared
    store = None
    if args.text == "features":
        texts = ["x"] * n_clips
        store = RandomFeatures(caption_ids, rng.normal(size=(n_clips, text.out_dim)).astype(np.float32))
    else:
        tokens = rng.integers(3, 50000, size=(n_clips, params.text.max_length))
        texts = [" ".join(map(str, row)) for row in tokens]
    data = RetrievalData(ids, caption_ids, texts, np.arange(n_clips), MemoryCache({a: proto for a in ids}))
    return model, LOSSES.build(params.loss, **params.loss_kwargs(params.loss)), data, store, params


def main(argv: list[str] | None = None) -> dict:
    import dataclasses

    import torch

    from salsa2.training.loop import StepInputs, start_run, train_step

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--preset", default="", help="a params preset merged onto params.yaml (params-paper.yaml)")
    p.add_argument("--encoder", default="transformer")
    p.add_argument("--batch", type=int, default=64, help="global batch (pairs)")
    p.add_argument("--steps", type=int, default=10, help="timed steps")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps first (compilation, allocator)")
    p.add_argument("--seconds", type=float, default=10.0, help="clip length")
    p.add_argument("--text", default="features", choices=("features", "roberta-large", "roberta-tiny"))
    p.add_argument("--precision", default="auto")
    p.add_argument("--compile", default="none", help="none | a torch.compile backend (inductor)")
    p.add_argument("--device", default="auto")
    p.add_argument("--prefetch", type=int, default=2)
    p.add_argument("--epochs", type=int, default=PAPER_EPOCHS, help="for the projected run time")
    args = p.parse_args(argv)
    if args.steps < 2:
        p.error("--steps must be >= 2 (synced and no_sync steps alternate)")

    model, loss_fn, data, store, params = build(args)
    cfg = dataclasses.replace(params.stage1, device=args.device, batch_size=args.batch, layout="pairs",
                              precision=args.precision, compile=args.compile, prefetch=args.prefetch,
                              max_seconds=0.0)
    enc = params.audio_encoder(args.encoder)
    run = start_run(model, loss_fn, data, cfg, audio_lr=enc.lr, text_lr=params.text.lr, text_features=store)
    ctx, dev = run.ctx, run.ctx.device
    cuda = dev.type == "cuda"

    def tick() -> float:
        if cuda:
            torch.cuda.synchronize(dev)
        return time.perf_counter()

    marks: dict[str, float] = {}  # phase -> when it ended

    def mark(phase: str) -> None:
        marks[phase] = tick()

    phases: dict[str, list[float]] = {k: [] for k in ("data", "forward", "backward_sync", "backward_nosync",
                                                       "optimizer")}
    n_params = sum(q.numel() for q in run.model.parameters())
    n_trained = sum(q.numel() for g in run.optimizer.param_groups for q in g["params"])
    if cuda:
        torch.cuda.reset_peak_memory_stats(dev)
    run.train_mode()
    loader = run.batches()
    last_wait = 0.0
    for step, loaded in enumerate(loader):
        if step == args.warmup + args.steps:
            break
        waited, last_wait = loader.wait_seconds - last_wait, loader.wait_seconds
        run.set_lr(step / run.steps)
        inputs = StepInputs.load(loaded, run.inputs)
        sync = step % 2 == 0 or ctx.world_size == 1
        mark("start")
        train_step(run, inputs, sync, 1, mark)
        if step >= args.warmup:
            phases["data"].append(waited)
            phases["forward"].append(marks["forward"] - marks["start"])
            phases["backward_sync" if sync else "backward_nosync"].append(marks["backward"] - marks["forward"])
            if sync:
                phases["optimizer"].append(marks["optimizer"] - marks["backward"])
    mean = {k: (float(np.mean(v)) if v else 0.0) for k, v in phases.items()}
    backward = mean["backward_nosync"] if phases["backward_nosync"] else mean["backward_sync"]
    gsync = max(mean["backward_sync"] - backward, 0.0) if phases["backward_nosync"] else 0.0
    step_s = mean["data"] + mean["forward"] + backward + gsync + mean["optimizer"]
    steps_epoch = math.ceil(CLOTHO_PAIRS / args.batch)
    peak = torch.cuda.max_memory_allocated(dev) / 1024**3 if cuda else _peak_rss_gb()
    result = {"device": torch.cuda.get_device_name(dev) if cuda else f"CPU ({torch.get_num_threads()} threads)",
              "processes": ctx.world_size, "encoder": args.encoder, "text": args.text, "batch": args.batch,
              "seconds": args.seconds, "precision": run.amp.precision, "compile": args.compile,
              "params_M": n_params / 1e6, "trained_M": n_trained / 1e6, "clips_per_s": args.batch / step_s,
              "step_s": step_s, "data_s": mean["data"], "forward_s": mean["forward"], "backward_s": backward,
              "sync_s": gsync, "optimizer_s": mean["optimizer"], "peak_gb": peak,
              "peak_kind": "device max_memory_allocated" if cuda else "host peak RSS",
              "clotho_epoch_min": steps_epoch * step_s / 60, "clotho_run_h": args.epochs * steps_epoch * step_s / 3600}
    if ctx.is_main:
        print(f"device {result['device']} x {ctx.world_size} process(es); {args.encoder} "
              f"({result['params_M']:.1f} M params, {result['trained_M']:.1f} M trained) + text {args.text}; "
              f"batch {args.batch} pairs of {args.seconds:g} s; {run.amp.precision}; compile {args.compile}")
        print(f"clips/s {result['clips_per_s']:.2f}   step {step_s * 1e3:.0f} ms = data {mean['data'] * 1e3:.0f}"
              f" + forward {mean['forward'] * 1e3:.0f} + backward {backward * 1e3:.0f} + sync {gsync * 1e3:.0f}"
              f" + optimizer {mean['optimizer'] * 1e3:.0f} ms")
        print(f"peak memory {peak:.2f} GB ({result['peak_kind']})")
        print(f"projected Clotho stage 1: {steps_epoch} steps/epoch, {result['clotho_epoch_min']:.1f} min/epoch, "
              f"{args.epochs} epochs {result['clotho_run_h']:.2f} h (validation not included)")
    return result


if __name__ == "__main__":
    main()
