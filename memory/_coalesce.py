"""Concurrent calls of a batch function share one call.

A batch run embeds and adds from many threads at once, one or two items each, and most of what a
model call or a store write costs is per call, not per item. No timer: while one call runs, the
others queue, and the first of them to wake runs the whole queue in one call (so a lone caller waits
for nothing).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

X = TypeVar("X")
Y = TypeVar("Y")


class _Request(Generic[X, Y]):
    __slots__ = ("error", "items", "result")

    def __init__(self, items: list[X]) -> None:
        self.items = items
        self.result: list[Y] | None = None
        self.error: BaseException | None = None


class Coalescer(Generic[X, Y]):
    """``coalescer(items)`` returns ``batch(items)``; concurrent callers' items go into one ``batch``
    call, which must return one result per item, in order. Its error reaches every caller of that call."""

    def __init__(self, batch: Callable[[list[X]], Sequence[Y]]) -> None:
        self._batch = batch
        self._cv = threading.Condition()
        self._queue: list[_Request[X, Y]] = []
        self._busy = False

    def __call__(self, items: Sequence[X]) -> list[Y]:
        mine: _Request[X, Y] = _Request(list(items))
        with self._cv:
            self._queue.append(mine)
            while self._busy and mine.result is None and mine.error is None:
                self._cv.wait()
            if mine.result is None and mine.error is None:
                self._busy = True  # this thread runs everything queued, its own items included
                queued, self._queue = self._queue, []
            else:
                queued = []
        if queued:
            try:
                results = list(self._batch([x for r in queued for x in r.items]))
                at = 0
                for r in queued:
                    r.result, at = results[at:at + len(r.items)], at + len(r.items)
            except BaseException as e:  # every caller of this call gets the error, not a hang
                for r in queued:
                    r.error = e
            finally:
                with self._cv:
                    self._busy = False
                    self._cv.notify_all()
        if mine.error is not None:
            raise mine.error
        assert mine.result is not None
        return mine.result
