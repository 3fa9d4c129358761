"""Data-parallel training over processes (``torchrun`` / ``torch.distributed``) with a global contrastive batch.

How a step is split (``salsa2.train.fit``): every process draws the same sequence of *global* batches
(same seed), takes its contiguous share of the batch's clips and of its captions (``shard``, like a
DistributedSampler applied inside each batch), and encodes only those. ``gather_rows`` all-gathers the
embeddings so that every process holds the whole (A, T) similarity of the global batch: the negatives
span all processes and the loss equals the one-process loss on the same global batch. Gradients reach
a process's own rows only; ``sync_gradients`` then sums the model's gradients over processes (the sum
of the per-rank partial gradients is the full gradient) and averages those of parameters every process
computes in full (the loss's own t, b).

This is what DistributedDataParallel does, written out: the model is used through ``encode_audio`` /
``encode_text_features`` rather than ``forward``, and a frozen text encoder leaves parameters unused,
both of which DDP's reducer handles badly. Batch norm statistics stay per process on CPU/gloo (as in
plain DDP); on CUDA ``prepare_model`` converts them to SyncBatchNorm.

Launch: ``torchrun --nproc-per-node 2 stages/train.py 1 cnn`` (every rank reads the same params; rank 0
logs, checkpoints and writes the model).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from collections.abc import Iterable

import torch
import torch.distributed as tdist
from torch import nn


@dataclass(frozen=True)
class DistContext:
    """This process's place in the job; the default is a single process on CPU."""

    rank: int = 0
    world_size: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def resolve_device(name: str = "auto", local_rank: int = 0) -> torch.device:
    """``auto``: this process's GPU when CUDA is available, else CPU; otherwise the named device."""
    if name == "auto":
        return torch.device(f"cuda:{local_rank}") if torch.cuda.is_available() else torch.device("cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"train device {name!r} asked for, but CUDA is not available; use device: auto or cpu")
    return device


_CURRENT: DistContext | None = None


def current(device: str = "auto") -> DistContext:
    """The job's context from torchrun's environment (WORLD_SIZE, RANK, LOCAL_RANK); joins the group once.

    Backend: nccl on CUDA, gloo on CPU (``SALSA2_DIST_BACKEND`` overrides).
    """
    global _CURRENT
    if _CURRENT is not None:
        return _CURRENT
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    dev = resolve_device(device, local_rank)
    if world > 1 and not tdist.is_initialized():
        backend = os.environ.get("SALSA2_DIST_BACKEND") or ("nccl" if dev.type == "cuda" else "gloo")
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        tdist.init_process_group(backend)
    if tdist.is_initialized():
        _CURRENT = DistContext(tdist.get_rank(), tdist.get_world_size(), dev)
    else:
        _CURRENT = DistContext(0, 1, dev)
    return _CURRENT


def shard(n: int, ctx: DistContext) -> slice:
    """This rank's contiguous share of ``n`` items (sizes differ by at most one; earlier ranks get more)."""
    base, extra = divmod(n, ctx.world_size)
    start = ctx.rank * base + min(ctx.rank, extra)
    return slice(start, start + base + (ctx.rank < extra))


def gather_rows(x: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """Concatenate every rank's ``x`` (rows may differ in number) in rank order; gradient flows to this rank's rows.

    Args:
        x: (n_rank, D) this rank's rows.
    Returns:
        (sum n_rank, D), identical on every rank except that only the local rows carry autograd history.
    """
    if ctx.world_size == 1:
        return x
    sizes = [torch.zeros(1, dtype=torch.long, device=x.device) for _ in range(ctx.world_size)]
    tdist.all_gather(sizes, torch.tensor([x.shape[0]], dtype=torch.long, device=x.device))
    counts = [int(s.item()) for s in sizes]
    width = max(counts)
    padded = torch.zeros((width, *x.shape[1:]), dtype=x.dtype, device=x.device)
    padded[: x.shape[0]] = x.detach()
    parts = [torch.empty_like(padded) for _ in range(ctx.world_size)]
    tdist.all_gather(parts, padded)
    rows = [p[:c] for p, c in zip(parts, counts)]
    rows[ctx.rank] = x
    return torch.cat(rows)


def _reduce(params: Iterable[nn.Parameter], ctx: DistContext, average: bool) -> None:
    params = [p for p in params if p.requires_grad]
    if not params:
        return
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = torch.cat([g.reshape(-1) for g in grads])
    tdist.all_reduce(flat)
    if average:
        flat /= ctx.world_size
    offset = 0
    for p, g in zip(params, grads):
        n = g.numel()
        p.grad = flat[offset : offset + n].view_as(p).clone()
        offset += n


def sync_gradients(model: nn.Module, loss_fn: nn.Module, ctx: DistContext) -> None:
    """Sum the model's gradients over ranks (each holds the part through its own rows); average the loss's."""
    if ctx.world_size == 1:
        return
    _reduce(model.parameters(), ctx, average=False)
    _reduce(loss_fn.parameters(), ctx, average=True)


def prepare_model(model: nn.Module, ctx: DistContext) -> nn.Module:
    """Move to the device; on multi-GPU jobs use SyncBatchNorm so statistics span the global batch."""
    if ctx.world_size > 1 and ctx.device.type == "cuda":
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    return model.to(ctx.device)


def barrier(ctx: DistContext) -> None:
    if ctx.world_size > 1:
        tdist.barrier()
