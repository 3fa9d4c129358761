"""Training batches prepared ahead of the step: same batches, same random draws, in a background thread.

``epoch_batches`` is the training loop's data path (``salsa2.features.splits.iterate_batches`` + ``collate_mels``: batch
order, length bucketing and random crops all draw from one numpy generator, in this order). ``Prefetcher``
runs such an iterator ``depth`` items ahead in one thread, so reading the memory-mapped spectrogram cache and
collating overlap with the GPU's work; pinned (page-locked) host memory on CUDA lets ``to_device`` copy
with ``non_blocking=True``. One thread, not worker processes: the draws stay in the same sequence on the
same generator, so a run with prefetching trains exactly like one without (``tests/training/test_loader.py``), and
the generator state saved for resume after an epoch is the same. ``depth: 0`` iterates in line.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np
import torch

from salsa2.features.splits import PAD_MULTIPLE, Batch, RetrievalData, collate_mels, iterate_batches

T = TypeVar("T")


@dataclass
class LoadedBatch:
    """A batch's indices and positives with its collated log-mels (B, n_mels, T) and lengths (B,)."""

    batch: Batch
    mel: torch.Tensor
    lengths: torch.Tensor

    def pin(self) -> LoadedBatch:
        return LoadedBatch(self.batch, self.mel.pin_memory(), self.lengths.pin_memory())


def epoch_batches(data: RetrievalData, batch_size: int, layout: str, rng: np.random.Generator,
                  max_frames: int = 0, pad_multiple: int = PAD_MULTIPLE) -> Iterator[LoadedBatch]:
    """One epoch: every batch's indices, then its crops, drawn from ``rng`` in the training loop's order; frames
    padded to a multiple of ``pad_multiple`` (the encoder's, ``data.pad_multiple_of``)."""
    for batch in iterate_batches(data, batch_size, layout, rng):
        mel, lengths = collate_mels([data.mel(i) for i in batch.audio], max_frames, rng, pad_multiple)
        yield LoadedBatch(batch, mel, lengths)


_DONE = object()


class Prefetcher(Generic[T]):
    """Iterate ``source`` in a daemon thread, up to ``depth`` items ahead; errors re-raise in the consumer.

    ``pin``: apply ``item.pin()`` in the thread (CUDA only: page-locked memory for non-blocking copies).
    Leaving the loop early (break, exception) stops the thread at its next item.
    """

    def __init__(self, source: Iterator[T], depth: int = 2, pin: bool = False) -> None:
        if depth < 0:
            raise ValueError(f"prefetch depth must be >= 0 (batches prepared ahead), got {depth}")
        self.source, self.depth, self.pin = source, depth, pin
        self.wait_seconds = 0.0  # time the consumer spent waiting for the next item (the data-wait share)

    def _produce(self, out: queue.Queue, stop: threading.Event) -> None:
        try:
            for item in self.source:
                if self.pin:
                    item = item.pin()  # type: ignore[attr-defined]
                while not stop.is_set():
                    try:
                        out.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            out.put(_DONE)
        except BaseException as err:  # noqa: BLE001 - handed to the consumer
            out.put(err)

    def __iter__(self) -> Iterator[T]:
        if self.depth == 0:
            while True:
                start = time.perf_counter()
                item = next(self.source, _DONE)
                self.wait_seconds += time.perf_counter() - start
                if item is _DONE:
                    return
                yield item.pin() if self.pin else item  # type: ignore[attr-defined, misc]
        out: queue.Queue = queue.Queue(maxsize=self.depth)
        stop = threading.Event()
        thread = threading.Thread(target=self._produce, args=(out, stop), name="salsa2-prefetch", daemon=True)
        thread.start()
        try:
            while True:
                start = time.perf_counter()
                item = out.get()
                self.wait_seconds += time.perf_counter() - start
                if item is _DONE:
                    break
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            stop.set()
            thread.join()


def to_device(x: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Copy to ``device``; asynchronous when the source is pinned host memory and the target a GPU."""
    return x.to(device, non_blocking=x.device.type == "cpu" and device.type == "cuda" and x.is_pinned())
