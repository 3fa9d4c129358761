"""Training-step benchmark (not a test): clips/s, the step split, peak memory, projected Clotho stage 1.

    PYTHONPATH=src python benchmarks/bench_train.py --preset params-paper.yaml --encoder passt --batch 64
    torchrun --standalone --nproc-per-node 4 benchmarks/bench_train.py --preset params-paper.yaml --encoder passt
    PYTHONPATH=src python benchmarks/bench_train.py --encoder transformer --batch 8 --seconds 10   # the demo

It builds the preset's dual encoder for ``--encoder`` with random audio weights (``weights: none``: no download)
and trains it on synthetic log-mels of ``--seconds`` through the training loop's pieces: the prefetch loader
(``salsa2.training.loader``: the same collate path as ``fit``), DDP over the processes of a ``torchrun`` job with the
gathered global batch (``salsa2.training.distributed``), autocast (``salsa2.training.amp``, ``--precision auto``), optional
``torch.compile``. Text side (``--text``): ``features`` = frozen cached sentence features (the demo), or a
randomly initialised, trained RoBERTa on random token ids: ``roberta-large`` (355 M, the paper's) or
``roberta-tiny`` (4 layers, width 256, for machines that cannot run the large one). Layout: pairs, so a
global batch holds ``--batch`` clips and ``--batch`` captions (the authors' layout).

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


def _text_encoder(kind: str, features_dim: int, max_length: int):
    """A text tower for the benchmark: frozen cached features, or a random-init RoBERTa on token ids."""
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

    return RandomRoberta()


def build(args):
    """(model, loss_fn, training data, text inputs per caption, train params) for the benchmark."""
    import torch

    from salsa2.config.params import load_params, training_params
    from salsa2.features.splits import RetrievalData
    from salsa2.features.logmel_cache import MemoryCache
    from salsa2.training.losses import LOSSES
    from salsa2.model.dual_encoder import DualEncoder
    from salsa2.training.stages import model_config
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
    proto = (rng.normal(size=(cfg.frontend.n_mels, frames)) - 4.5).astype(np.float16)  # one clip, shared
    data = RetrievalData(ids, [f"{a}#0" for a in ids], ["x"] * n_clips, np.arange(n_clips),
                         MemoryCache({a: proto for a in ids}))
    if args.text == "features":
        text_inputs = torch.from_numpy(rng.normal(size=(n_clips, text.out_dim)).astype(np.float32))
    else:
        text_inputs = torch.from_numpy(rng.integers(3, 50000, size=(n_clips, params.text.max_length)))
    return model, LOSSES.build(params.loss, **params.loss_kwargs(params.loss)), data, text_inputs, params.stage1


def main(argv: list[str] | None = None) -> dict:
    import dataclasses

    import torch

    from salsa2.training.amp import MixedPrecision
    from salsa2.training.distributed import current, gather_rows, no_sync, prepare_model, shard, shard_counts, wrap
    from salsa2.training.loader import Prefetcher, epoch_batches, to_device
    from salsa2.training.losses import total_loss
    from salsa2.training.loop import compile_encoders

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

    model, loss_fn, data, text_inputs, cfg = build(args)
    cfg = dataclasses.replace(cfg, device=args.device, batch_size=args.batch, layout="pairs")
    ctx = current(cfg.device)
    dev = ctx.device
    model = prepare_model(model, ctx)
    loss_fn.to(dev)
    compile_encoders(model, args.compile)
    params = [q for m in (model, loss_fn) for q in m.parameters() if q.requires_grad]
    optimizer = torch.optim.Adam(params, lr=1e-5)
    amp = MixedPrecision(args.precision, dev)
    runner = wrap(model, loss_fn, ctx)
    cuda = dev.type == "cuda"

    def tick() -> float:
        if cuda:
            torch.cuda.synchronize(dev)
        return time.perf_counter()

    phases: dict[str, list[float]] = {k: [] for k in ("data", "forward", "backward_sync", "backward_nosync",
                                                       "optimizer")}
    rng = np.random.default_rng(0)
    loader = Prefetcher(epoch_batches(data, args.batch, "pairs", rng), args.prefetch, pin=cuda)
    n_params = sum(q.numel() for q in model.parameters())
    n_trained = sum(q.numel() for q in params)
    if cuda:
        torch.cuda.reset_peak_memory_stats(dev)
    last_wait = 0.0
    for step, loaded in enumerate(loader):
        if step == args.warmup + args.steps:
            break
        waited, last_wait = loader.wait_seconds - last_wait, loader.wait_seconds
        batch = loaded.batch
        mel, lengths = to_device(loaded.mel, dev), to_device(loaded.lengths, dev)
        rows, cols = shard(len(batch.audio), ctx), shard(len(batch.captions), ctx)
        counts = shard_counts(len(batch.audio), ctx)
        positives = batch.positives.to(dev)
        inputs = text_inputs[batch.captions[cols]].to(dev)

        def run(m, loss_module, mel=mel, lengths=lengths, rows=rows, inputs=inputs, counts=counts,
                text_counts=shard_counts(len(batch.captions), ctx), positives=positives):
            with amp.autocast():
                audio = m.encode_audio(mel[rows], lengths[rows])
                feats = inputs if args.text == "features" else m.text_encoder(inputs)
                text = m.encode_text_features(feats)
            text = gather_rows(text.float(), ctx, text_counts)
            return loss_module(m.similarity(gather_rows(audio.float(), ctx, counts), text), positives)

        sync = step % 2 == 0 or ctx.world_size == 1
        t1 = tick()
        with no_sync(runner, sync):
            loss = total_loss(runner(run))
            t2 = tick()
            amp.backward(loss)
            t3 = tick()
        if sync:
            amp.step(optimizer, params, 0.0)
        optimizer.zero_grad(set_to_none=True)
        t4 = tick()
        if step >= args.warmup:
            phases["data"].append(waited)
            phases["forward"].append(t2 - t1)
            phases["backward_sync" if sync else "backward_nosync"].append(t3 - t2)
            if sync:
                phases["optimizer"].append(t4 - t3)
    mean = {k: (float(np.mean(v)) if v else 0.0) for k, v in phases.items()}
    backward = mean["backward_nosync"] if phases["backward_nosync"] else mean["backward_sync"]
    gsync = max(mean["backward_sync"] - backward, 0.0) if phases["backward_nosync"] else 0.0
    step_s = mean["data"] + mean["forward"] + backward + gsync + mean["optimizer"]
    steps_epoch = math.ceil(CLOTHO_PAIRS / args.batch)
    peak = torch.cuda.max_memory_allocated(dev) / 1024**3 if cuda else _peak_rss_gb()
    result = {"device": torch.cuda.get_device_name(dev) if cuda else f"CPU ({torch.get_num_threads()} threads)",
              "processes": ctx.world_size, "encoder": args.encoder, "text": args.text, "batch": args.batch,
              "seconds": args.seconds, "precision": amp.precision, "compile": args.compile,
              "params_M": n_params / 1e6, "trained_M": n_trained / 1e6, "clips_per_s": args.batch / step_s,
              "step_s": step_s, "data_s": mean["data"], "forward_s": mean["forward"], "backward_s": backward,
              "sync_s": gsync, "optimizer_s": mean["optimizer"], "peak_gb": peak,
              "peak_kind": "device max_memory_allocated" if cuda else "host peak RSS",
              "clotho_epoch_min": steps_epoch * step_s / 60, "clotho_run_h": args.epochs * steps_epoch * step_s / 3600}
    if ctx.is_main:
        print(f"device {result['device']} x {ctx.world_size} process(es); {args.encoder} "
              f"({result['params_M']:.1f} M params, {result['trained_M']:.1f} M trained) + text {args.text}; "
              f"batch {args.batch} pairs of {args.seconds:g} s; {amp.precision}; compile {args.compile}")
        print(f"clips/s {result['clips_per_s']:.2f}   step {step_s * 1e3:.0f} ms = data {mean['data'] * 1e3:.0f}"
              f" + forward {mean['forward'] * 1e3:.0f} + backward {backward * 1e3:.0f} + sync {gsync * 1e3:.0f}"
              f" + optimizer {mean['optimizer'] * 1e3:.0f} ms")
        print(f"peak memory {peak:.2f} GB ({result['peak_kind']})")
        print(f"projected Clotho stage 1: {steps_epoch} steps/epoch, {result['clotho_epoch_min']:.1f} min/epoch, "
              f"{args.epochs} epochs {result['clotho_run_h']:.2f} h (validation not included)")
    return result


if __name__ == "__main__":
    main()
