"""Decoding many audio files on a few threads, in input order, with the unreadable ones set aside.

Used by the log-mel cache (``features.logmel_cache``) and the search index (``search.index``)::

    with DecodePool(decode, workers=2) as pool:
        for item, value in pool.map(items):  # readable items only, in input order
            ...
    pool.rejects  # [(item, AudioReadError)], in input order
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType
from typing import Generic, Protocol, TypeVar

from salsa2.audio.decode import AudioReadError

T = TypeVar("T")
R = TypeVar("R")


class Progress(Protocol):
    """What the pool needs of a progress bar (e.g. ``tqdm``)."""

    def update(self, n: int = 1) -> object: ...


class DecodePool(Generic[T, R]):
    """``decode(item)`` on ``workers`` threads; an ``AudioReadError`` it raises makes the item a reject.

    Any other exception propagates (to the caller of ``map``) and the items not yet started are cancelled.
    """

    def __init__(self, decode: Callable[[T], R], workers: int = 2, *, progress: Progress | None = None) -> None:
        self.decode = decode
        self.workers = max(1, workers)
        self.progress = progress
        self.rejects: list[tuple[T, AudioReadError]] = []
        self._executor: ThreadPoolExecutor | None = None

    def __enter__(self) -> DecodePool[T, R]:
        self._executor = ThreadPoolExecutor(self.workers)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        assert self._executor is not None
        self._executor.shutdown(wait=True, cancel_futures=True)
        self._executor = None

    def map(self, items: Iterable[T], *, ahead: int | None = None) -> Iterator[tuple[T, R]]:
        """(item, decode(item)) of each readable item, in input order; each unreadable one is appended to
        ``rejects`` before the next readable item is yielded.

        At most ``ahead`` items are queued, decoding, or decoded and not yet taken (None: every item is queued at
        once), which bounds the decoded data held besides the item the caller is working on.
        """
        if self._executor is None:
            raise RuntimeError("DecodePool.map outside its `with` block")
        pending: deque[tuple[T, Future[R]]] = deque()
        source = iter(items)
        try:
            self._submit(source, pending, ahead)
            while pending:
                item, future = pending.popleft()
                try:
                    value = future.result()
                except AudioReadError as err:
                    self.rejects.append((item, err))
                    readable = False
                else:
                    readable = True
                if self.progress is not None:
                    self.progress.update(1)
                self._submit(source, pending, ahead)
                if readable:
                    yield item, value
        finally:
            for _, future in pending:
                future.cancel()

    def take_rejects(self) -> list[tuple[T, AudioReadError]]:
        """The rejects collected so far, in input order; the pool's list starts afresh."""
        out, self.rejects = self.rejects, []
        return out

    def _submit(self, source: Iterator[T], pending: deque[tuple[T, Future[R]]], ahead: int | None) -> None:
        """Queue items from ``source`` until ``ahead`` are pending (or ``source`` is used up)."""
        assert self._executor is not None
        while ahead is None or len(pending) < max(1, ahead):
            try:
                item = next(source)
            except StopIteration:
                return
            pending.append((item, self._executor.submit(self.decode, item)))
