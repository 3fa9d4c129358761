"""Data-parallel training over processes (``torchrun`` / ``torch.distributed``) with a global contrastive batch.

How a step is split (``salsa2.training.loop.fit``): every process draws the same sequence of *global* batches
(same seed), takes its contiguous share of the batch's clips and of its captions (``shard``, like a
DistributedSampler applied inside each batch), and encodes only those. ``gather_rows`` all-gathers the
embeddings (for TAP: the rows of the similarity) with a differentiable all-gather, so every process holds
the whole (A, T) similarity of the global batch: the negatives span all processes and the loss equals the
one-process loss on the same global batch.

Gradients: every process computes the same loss L. The all-gather's backward sums the incoming gradients
of every process and keeps this process's rows (W dL/dx_r for W processes), so the parameters' local
gradients are W times this process's share of dL/dtheta; DistributedDataParallel then averages them
over processes, which gives the full gradient sum_r (share r) = dL/dtheta (the loss's own t, b, computed
in full everywhere, get the average of W equal gradients). DDP wraps ``TrainStep`` (model + loss), whose
``forward`` runs the step, so the encoders are called inside the DDP forward and DDP's bucketed
all-reduce overlaps with the backward pass. Options: ``find_unused_parameters`` (parameters that may get
no gradient in a step) and ``static_graph`` (the same graph every step) from ``stage1/stage2.ddp_*``.

BatchNorm: SyncBatchNorm on CUDA (``prepare_model``); on CPU/gloo per-process statistics, rank 0's buffers
broadcast by DDP at every forward. Launch: ``stage1.nproc: N`` makes ``stages/train.py`` re-execute itself
through ``torch.distributed.run`` (``launch_command``); rank 0 logs, checkpoints and writes the model.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import sys
from collections.abc import Callable
from dataclasses import dataclass, field

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


class _GatherRows(torch.autograd.Function):
    """All-gather rows of unequal count (padded to the largest); backward sums over ranks, keeps own rows."""

    @staticmethod
    def forward(fctx, x: torch.Tensor, counts: tuple[int, ...], rank: int) -> torch.Tensor:  # type: ignore[override]
        fctx.counts, fctx.rank = counts, rank
        padded = x.new_zeros((max(counts), *x.shape[1:]))
        padded[: x.shape[0]] = x
        parts = [torch.empty_like(padded) for _ in counts]
        tdist.all_gather(parts, padded)
        return torch.cat([p[:c] for p, c in zip(parts, counts)])

    @staticmethod
    def backward(fctx, grad: torch.Tensor):  # type: ignore[override]
        total = grad.contiguous().clone()
        tdist.all_reduce(total)  # every rank's loss reaches my rows through its copy of them
        start = sum(fctx.counts[: fctx.rank])
        return total[start : start + fctx.counts[fctx.rank]], None, None


def shard_counts(n: int, ctx: DistContext) -> tuple[int, ...]:
    """How many of ``n`` rows every rank holds (``shard``'s sizes, in rank order)."""
    return tuple(len(range(n)[shard(n, DistContext(r, ctx.world_size))]) for r in range(ctx.world_size))


def gather_rows(x: torch.Tensor, ctx: DistContext, counts: tuple[int, ...] | None = None) -> torch.Tensor:
    """Concatenate every rank's ``x`` in rank order, differentiably (see the module docstring for the gradient).

    Args:
        x: (n_rank, ...) this rank's rows.
        counts: every rank's row count if known (``shard_counts``); otherwise one extra all-gather finds them.
    Returns:
        (sum n_rank, ...), identical on every rank.
    """
    if ctx.world_size == 1:
        return x
    if counts is None:
        sizes = [torch.zeros(1, dtype=torch.long, device=x.device) for _ in range(ctx.world_size)]
        tdist.all_gather(sizes, torch.tensor([x.shape[0]], dtype=torch.long, device=x.device))
        counts = tuple(int(s.item()) for s in sizes)
    if counts[ctx.rank] != x.shape[0]:
        raise ValueError(f"gather_rows: rank {ctx.rank} holds {x.shape[0]} rows, counts say {counts[ctx.rank]}")
    return _GatherRows.apply(x.contiguous(), tuple(counts), ctx.rank)


class TrainStep(nn.Module):
    """The model and the loss as one module, so that DDP sees every trained parameter (encoders, heads, t, b).

    ``forward(step)`` returns ``step(model, loss_fn)``: the training step (encode, gather, loss terms) runs
    inside the (DDP-wrapped) forward.
    """

    def __init__(self, model: nn.Module, loss_fn: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.loss_fn = loss_fn

    def forward(self, step: Callable[[nn.Module, nn.Module], dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        return step(self.model, self.loss_fn)


def wrap(model: nn.Module, loss_fn: nn.Module, ctx: DistContext, *, find_unused_parameters: bool = False,
         static_graph: bool = False) -> nn.Module:
    """``TrainStep(model, loss_fn)``, under DistributedDataParallel when the job has several processes."""
    step = TrainStep(model, loss_fn)
    if ctx.world_size == 1:
        return step
    from torch.nn.parallel import DistributedDataParallel

    ids = [ctx.device.index] if ctx.device.type == "cuda" else None
    return DistributedDataParallel(step, device_ids=ids, find_unused_parameters=find_unused_parameters,
                                   static_graph=static_graph)


def no_sync(step: nn.Module, sync: bool) -> contextlib.AbstractContextManager:
    """DDP's ``no_sync`` for the micro-batches of an accumulation group that do not step the optimizer."""
    if sync or not hasattr(step, "no_sync"):
        return contextlib.nullcontext()
    return step.no_sync()


def prepare_model(model: nn.Module, ctx: DistContext) -> nn.Module:
    """Move to the device; on multi-GPU jobs use SyncBatchNorm so statistics span the global batch."""
    if ctx.world_size > 1 and ctx.device.type == "cuda":
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    return model.to(ctx.device)


def barrier(ctx: DistContext) -> None:
    if ctx.world_size > 1:
        tdist.barrier()


def launch_command(nproc: int, argv: list[str], standalone: bool = True) -> list[str] | None:
    """The command that re-runs ``argv`` (a script and its arguments) under torchrun with ``nproc`` processes.

    None when no re-launch is needed: ``nproc`` <= 1, or this process already belongs to a job (WORLD_SIZE).
    ``--standalone`` picks a free rendezvous port on this machine (one node).
    """
    if nproc < 1:
        raise ValueError(f"nproc must be >= 1 (processes of the training job), got {nproc}")
    if nproc == 1 or "WORLD_SIZE" in os.environ:
        return None
    return [sys.executable, "-m", "torch.distributed.run", *(["--standalone"] if standalone else []),
            f"--nproc-per-node={nproc}", *argv]


def describe(cmd: list[str]) -> str:
    return " ".join(shlex.quote(c) for c in cmd)


def check_batch_sizes(n_items: int, batch_size: int, ctx: DistContext) -> None:
    """Every batch must give every rank at least one row; otherwise raise before training starts. An epoch's
    batches are full but its last (``salsa2.features.splits._bucketed`` sorts in chunks of whole batches)."""
    smallest = n_items % batch_size or batch_size
    if ctx.world_size > 1 and min(smallest, n_items) < ctx.world_size:
        raise ValueError(f"a batch of {smallest} items cannot be split over {ctx.world_size} processes "
                         f"({n_items} training items, batch_size {batch_size}); change batch_size or nproc")
