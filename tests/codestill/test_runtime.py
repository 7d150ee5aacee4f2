"""Process-wide settings a codestill program makes before its work starts."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from codestill.runtime import settle_heap


class _Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the cyclic collector frees it


@pytest.fixture
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    try:
        yield
    finally:
        gc.unfreeze()  # give the rest of the suite its collector back as it was


def test_settle_heap_collects_old_garbage_freezes_the_living_and_still_collects_new_garbage(unfrozen):
    dead = _Node()
    gone = weakref.ref(dead)
    del dead
    alive = _Node()
    settle_heap()
    assert gone() is None  # garbage from before is collected, not frozen
    assert gc.get_freeze_count() > 0 and alive.me is alive
    later = _Node()
    freed = weakref.ref(later)
    del later
    gc.collect()
    assert freed() is None  # what the work makes afterwards is collected as usual
