"""The ``Memory`` protocol (what the graphs use) over every backend: ``ModuleMemory`` in the process
and ``MemoryProcess`` (the batch runner's: the same memory in a child process), each over an embedded
store and a Chroma server, and the in-process fake (``FakeMemory``; a child process serves only a
Chroma store, so that pairing is skipped). Then what is particular to the child: errors, and its life
bound to ours."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager

import pytest

from codestill.config import MemoryConfig
from codestill.errors import MemoryStoreError
from codestill.schemas import ModuleSpec
from memory import Memory, MemoryProcess, ModuleMemory
from tests.memory.conftest import module

SPEC = ModuleSpec(name="scale", signature="def scale(x)", description="multiply a number and add to it")
CODES = [f"def scale_{i}(x):\n    \"\"\"Multiply x by {i} and add {i * 7}.\"\"\"\n    return x * {i} + {i * 7}\n"
         for i in range(32)]


@pytest.fixture(params=["in-process", "child"])
def backend(request: pytest.FixtureRequest, memory_kind: str, memory_config: MemoryConfig,
            open_memory) -> Iterator[tuple]:
    """(open a Memory for the test's store as a context manager, open a fresh reader of that store)."""
    if request.param == "child" and memory_kind == "fake":
        pytest.skip("a memory process serves a Chroma store; the fake lives in the caller's process")

    def open_() -> AbstractContextManager:
        if request.param == "child":
            return MemoryProcess(memory_config, workers=4)
        return open_memory()

    yield open_, open_memory


def _totals(open_reader) -> tuple[int, int, int, int]:
    with open_reader() as m:
        records = list(m.iter_all())
        return (len(records), sum(r.times_added for r in records), sum(r.times_retrieved for r in records),
                sum(r.times_reused for r in records))


def test_concurrent_adds_searches_and_reuse_lose_nothing(backend):
    open_, open_reader = backend

    async def main(m: Memory):
        # 32 distinct modules, each added twice at once, with 64 searches interleaved.
        added = await asyncio.gather(*(m.aadd(module(c)) for c in CODES * 2))
        found = await asyncio.gather(*(m.asearch(SPEC, k=3, min_score=0.0) for _ in range(64)))
        await m.amark_reused([found[0][0].module.id, found[1][1].module.id])
        return added, found

    with open_() as m:
        added, found = asyncio.run(main(m))
    assert sorted(r.status for r in added).count("added") == 32
    assert {r.id for r in added} == {r.id for r in added if r.status == "added"}  # duplicates point at a record
    assert all(len(hits) == 3 and hits[0].score >= hits[-1].score for hits in found)
    # Closed: every count is in the store, as a fresh reader sees it.
    assert _totals(open_reader) == (32, 64, 64 * 3, 2)


def test_unverified_and_unparsable_modules_are_refused_not_raised(backend):
    open_, _ = backend

    async def main(m: Memory):
        return (await m.aadd(module(CODES[0], verified=False)),
                await m.aadd(module(CODES[0]).model_copy(update={"code": "def broken(:\n"})))

    with open_() as m:
        unverified, invalid = asyncio.run(main(m))
    assert (unverified.status, unverified.id) == ("unverified", None)
    assert (invalid.status, invalid.id) == ("invalid", None)


# ---------------------------------------------------------------- the child process


def test_a_corrupt_store_fails_at_start_with_the_same_message(tmp_path):
    where = tmp_path / "memory"
    where.mkdir()
    (where / "chroma.sqlite3").write_bytes(b"this is not a sqlite database" * 100)
    with pytest.raises(MemoryStoreError, match=r"not a readable Chroma store.*restore it from an export"):
        MemoryProcess(MemoryConfig(path=where)).start()


def test_calls_after_the_child_died_raise_instead_of_hanging(tmp_path):
    memory = MemoryProcess(MemoryConfig(path=tmp_path / "memory"), log=tmp_path / "memory.log")
    with memory:
        assert asyncio.run(memory.aadd(module(CODES[1]))).status == "added"
        assert memory.pid is not None
        os.kill(memory.pid, signal.SIGKILL)  # a crash of the child, as the OOM killer would do it
        with pytest.raises(MemoryStoreError, match=r"memory process died \(exit code -9\).*--resume"):
            asyncio.run(asyncio.wait_for(memory.asearch(SPEC, k=1), 30))
        with pytest.raises(MemoryStoreError, match=r"memory process died"):  # and every later call
            asyncio.run(memory.aadd(module(CODES[2])))
    with MemoryProcess(MemoryConfig(path=tmp_path / "memory")) as again:  # the killed child's lock is gone
        assert [h.module.name for h in asyncio.run(again.asearch(SPEC, k=1, min_score=0.0))] == ["scale_1"]
    with pytest.raises(MemoryStoreError, match=r"memory was closed"):
        asyncio.run(again.asearch(SPEC, k=1))


PARENT = r'''
import sys
from pathlib import Path
from codestill.config import MemoryConfig
from memory import MemoryProcess
m = MemoryProcess(MemoryConfig(path=Path(sys.argv[1])))
m.start()
print(m.pid, flush=True)
sys.stdin.read()  # until killed
'''


def test_the_child_ignores_ctrl_c_and_ends_with_its_parent(tmp_path):
    parent = subprocess.Popen([sys.executable, "-c", PARENT, str(tmp_path / "memory")], stdout=subprocess.PIPE,
                              stdin=subprocess.PIPE, text=True, start_new_session=True)
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    # Ctrl-C at a terminal signals the whole process group: the child stays (the runner still needs it).
    os.kill(child, signal.SIGINT)
    os.kill(child, signal.SIGTERM)
    time.sleep(1)
    assert _alive(child)
    parent.kill()  # kill -9 of the runner: no close, no goodbye
    parent.wait(10)
    # A run resumed at once opens the store: it waits for the orphaned child to let go, not fails.
    with ModuleMemory(MemoryConfig(path=tmp_path / "memory")) as again:
        assert len(again) == 0
    deadline = time.monotonic() + 60
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _alive(child)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
