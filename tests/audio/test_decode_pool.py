"""The shared decode pool: input order kept, unreadable items set aside by name, bounded look-ahead."""

from __future__ import annotations

import threading
import time

import pytest

from salsa2.audio.decode import AudioReadError
from salsa2.audio.decode_pool import DecodePool


def _slow_decode(name: str) -> str:
    """Later items finish first (so order must be restored); names starting with 'bad' are unreadable."""
    time.sleep(0.002 * (10 - int(name[-1])))
    if name.startswith("bad"):
        raise AudioReadError(name, "corrupt", f"{name} is not audio")
    return name.upper()


class _Counter:
    def __init__(self) -> None:
        self.n = 0

    def update(self, n: int = 1) -> None:
        self.n += n


def test_order_kept_and_rejects_named_in_order():
    items = ["a0", "bad1", "a2", "a3", "bad4", "a5", "a6", "bad7", "a8", "a9"]
    bar = _Counter()
    with DecodePool(_slow_decode, workers=4, progress=bar) as pool:
        got = list(pool.map(items))
    assert got == [(x, x.upper()) for x in items if not x.startswith("bad")]
    assert [(item, err.reason, err.detail) for item, err in pool.rejects] == [
        ("bad1", "corrupt", "bad1 is not audio"), ("bad4", "corrupt", "bad4 is not audio"),
        ("bad7", "corrupt", "bad7 is not audio")]
    assert bar.n == len(items)  # readable and unreadable items alike


def test_rejects_are_recorded_before_the_next_readable_item():
    seen = []
    with DecodePool(_slow_decode, workers=2) as pool:
        for item, _ in pool.map(["a0", "bad1", "a2"]):
            seen.append((item, [r for r, _ in pool.rejects]))
        assert pool.take_rejects()[0][0] == "bad1" and pool.rejects == []
    assert seen == [("a0", []), ("a2", ["bad1"])]


def test_windows_share_one_pool():
    with DecodePool(_slow_decode, workers=2) as pool:
        first = [x for x, _ in pool.map(["a0", "bad1"])]
        assert [x for x, _ in pool.take_rejects()] == ["bad1"]
        second = [x for x, _ in pool.map(["a2", "bad3", "a4"])]
        assert [x for x, _ in pool.take_rejects()] == ["bad3"]
    assert (first, second) == (["a0"], ["a2", "a4"])


def test_look_ahead_is_bounded():
    started: list[int] = []
    lock = threading.Lock()

    def decode(i: int) -> int:
        with lock:
            started.append(i)
        return i

    with DecodePool(decode, workers=3) as pool:
        for taken, _ in enumerate(pool.map(range(50), ahead=4), start=1):
            time.sleep(0.001)
            assert len(started) <= taken + 4
    assert sorted(started) == list(range(50))


def test_other_errors_propagate_and_stop_the_rest():
    started: list[int] = []

    def decode(i: int) -> int:
        started.append(i)
        if i == 2:
            raise TypeError("not a path")
        return i

    with DecodePool(decode, workers=1) as pool:
        with pytest.raises(TypeError, match="not a path"):
            list(pool.map(range(100), ahead=2))
    assert len(started) <= 5 and pool.rejects == []


def test_map_needs_the_with_block():
    with pytest.raises(RuntimeError, match="with"):
        next(DecodePool(_slow_decode).map(["a0"]))
