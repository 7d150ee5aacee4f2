"""``MemoryProcess``: the ``Memory`` protocol served by a ``ModuleMemory`` in a child process.

Why: a batch run keeps 64 tasks in flight on one event loop, and that loop holds the interpreter lock
most of the time. Embedding a spec (MiniLM's forward pass runs Python code between its kernels) and
Chroma's embedded writes (its bindings keep the lock while they insert) then take turns with the loop,
and every task waits for both. In a child process they run beside the loop, on a core of their own.

The child opens the store itself (so the store's lock and files belong to it), answers requests on a
pipe from a small thread pool (so concurrent searches still share model calls, ``BatchingEmbedder``),
and writes pending retrieval counts when the pipe closes: on ``close``, and also when the parent dies
without one, since a dead parent's end of the pipe is closed by the kernel. It ignores SIGINT and
SIGTERM: a Ctrl-C at the terminal reaches the whole process group, and the runner's own stop (finish
what is in flight) still needs the memory. A child that dies makes every waiting and later call raise
``MemoryStoreError``, which stops a batch, not a hang.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from codestill.config import MemoryConfig
from codestill.errors import CodestillError, MemoryStoreError
from codestill.ports import AddResult
from codestill.runtime import settle_heap
from codestill.schemas import MemoryHit, Module, ModuleSpec

_CALLS = frozenset({"search", "add", "mark_reused"})
_START_S = 300.0  # loading torch and the model on a busy 2-core machine can take a minute


def _serve(conn: Connection) -> None:
    """The child: open the memory, answer ``(id, method, args)`` until told to close or the pipe closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    from memory._store import ModuleMemory

    config, workers, parent = conn.recv()
    if os.getppid() != parent:
        return  # the runner died while this process started: nobody to serve
    try:
        memory = ModuleMemory(config, parent=parent)
    except CodestillError as e:
        conn.send(("failed", e))
        return
    with memory:
        try:
            # Load the model now: a first embedding inside the run would hold every caller for seconds.
            memory.embedder.embed(["def warm_up()"])
        except CodestillError as e:
            conn.send(("failed", e))
            return
        # torch, transformers and Chroma are loaded: a full collection over their objects takes about
        # 200 ms here, and in a long batch one comes whenever the heap has grown by a quarter, holding
        # every search in flight (see ``settle_heap``).
        settle_heap()
        try:
            conn.send(("ready", memory.where))
        except OSError:
            return  # the runner died while this process started
        _answer(conn, memory, workers)


def _answer(conn: Connection, memory: Any, workers: int) -> None:
    sending = threading.Lock()

    def answer(call_id: int, method: str, args: tuple[Any, ...]) -> None:
        try:
            reply: tuple[Any, ...] = (call_id, True, getattr(memory, method)(*args))
        except CodestillError as e:
            reply = (call_id, False, e)
        except Exception as e:  # a bug or a Chroma fault: the caller gets it as a memory error
            reply = (call_id, False, MemoryStoreError(f"the memory failed: {type(e).__name__}: {e}"))
        with sending, contextlib.suppress(OSError):  # a dead runner's answers go nowhere
            conn.send(reply)

    # Leaving the with-block waits for the calls in flight, then the caller closes the store.
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="codestill-memory") as pool:
        while True:
            try:
                call_id, method, args = conn.recv()
            except (EOFError, OSError):
                break  # the runner died: the kernel closed its end
            if method == "close":
                break
            if method in _CALLS:
                pool.submit(answer, call_id, method, args)


def _child_env() -> dict[str, str]:
    # One torch thread unless the user chose: the child embeds a few short texts per call, where a
    # second thread saves ~2 ms of ~15 (measured) and costs the runner's loop a core while it spins up.
    return {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}


class MemoryProcess:
    """Open with ``with MemoryProcess(config) as memory:``; the async methods are the ``Memory`` protocol."""

    def __init__(self, config: MemoryConfig | None = None, workers: int = 8, log: Path | None = None) -> None:
        self.config = config or MemoryConfig()
        self.workers = workers
        self.log = log  # the child's stdout and stderr (warnings, a crash's traceback); else discarded
        self.where = ""
        self._proc: Any = None
        self._conn: Connection | None = None
        self._ids = itertools.count()
        self._waiting: dict[int, Future[Any]] = {}
        self._lock = threading.Lock()
        self._dead: str | None = None
        self._closing = False
        self._reader: threading.Thread | None = None

    @property
    def pid(self) -> int | None:
        """The child's process id while it runs (to watch its CPU or memory from outside)."""
        return self._proc.pid if self._proc is not None else None

    def __enter__(self) -> MemoryProcess:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        # A plain child interpreter, not multiprocessing's spawn: spawn re-runs the parent's main script,
        # which need not be import-safe (a user's script, a REPL). -P: a folder named like one of our
        # packages in the working directory cannot stand in for it.
        ours, theirs = socket.socketpair()
        with ours, theirs:
            log = self.log.open("ab") if self.log is not None else subprocess.DEVNULL
            try:
                self._proc = subprocess.Popen(
                    [sys.executable, "-P", "-m", "memory._process", str(theirs.fileno())],
                    pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                    env=_child_env())
            finally:
                if self.log is not None:
                    log.close()  # type: ignore[union-attr]
            self._conn = Connection(ours.detach())
        self._conn.send((self.config, self.workers, os.getpid()))
        if not self._conn.poll(_START_S):
            self._stop()
            raise MemoryStoreError(f"the memory process did not open the store within {_START_S:g} s")
        try:
            status, detail = self._conn.recv()
        except (EOFError, OSError):
            code = self._stop()
            raise MemoryStoreError(f"the memory process exited while opening the store (exit code {code})"
                                   + (f"; see {self.log}" if self.log else "")) from None
        if status == "failed":
            self._stop()
            raise detail
        self.where = detail
        self._reader = threading.Thread(target=self._read, name="codestill-memory-replies", daemon=True)
        self._reader.start()

    def close(self) -> None:
        """Let the child answer what is in flight, write what is pending, and exit."""
        if self._proc is None:
            return
        with self._lock:
            self._closing = True
            with contextlib.suppress(OSError, ValueError):
                assert self._conn is not None
                self._conn.send((-1, "close", ()))
        # Not conn.close() first: a close does not wake the reader thread blocked on the same socket,
        # and the child sees EOF only once it is woken. The child's exit closes its end, which does.
        try:
            self._proc.wait(60)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(10)
        if self._reader is not None:
            self._reader.join(10)
        if self._conn is not None:
            self._conn.close()
        self._conn = self._proc = self._reader = None

    def _stop(self) -> int | None:
        with contextlib.suppress(OSError):
            if self._conn is not None:
                self._conn.close()
        self._proc.kill()
        code = self._proc.wait(10)
        self._conn = self._proc = None
        return code

    def _read(self) -> None:
        conn = self._conn
        assert conn is not None
        while True:
            try:
                call_id, ok, value = conn.recv()
            except (EOFError, OSError):
                break
            with self._lock:
                fut = self._waiting.pop(call_id, None)
            if fut is not None:
                fut.set_result(value) if ok else fut.set_exception(value)
        proc = self._proc
        code = None
        if proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                code = proc.wait(5)
        with self._lock:
            self._dead = ("the memory was closed" if self._closing
                          else f"the memory process died (exit code {code})")
            waiting, self._waiting = self._waiting, {}
        for fut in waiting.values():
            fut.set_exception(MemoryStoreError(f"{self._dead}; the run stops here and resumes with --resume"))

    def _call(self, method: str, *args: Any) -> Future[Any]:
        fut: Future[Any] = Future()
        with self._lock:
            if self._dead is not None or self._conn is None:
                fut.set_exception(MemoryStoreError(f"{self._dead or 'the memory process is not running'}; "
                                                   "the run stops here and resumes with --resume"))
                return fut
            call_id = next(self._ids)
            self._waiting[call_id] = fut
            try:
                self._conn.send((call_id, method, args))
            except (OSError, ValueError) as e:
                self._waiting.pop(call_id, None)
                fut.set_exception(MemoryStoreError(f"the memory process does not answer ({e})"))
        return fut

    async def asearch(self, spec: ModuleSpec, k: int = 5, min_score: float | None = None,
                      count: bool = True) -> list[MemoryHit]:
        return await asyncio.wrap_future(self._call("search", spec, k, min_score, count))

    async def aadd(self, module: Module) -> AddResult:
        return await asyncio.wrap_future(self._call("add", module))

    async def amark_reused(self, ids: Iterable[str]) -> None:
        await asyncio.wrap_future(self._call("mark_reused", list(ids)))


if __name__ == "__main__":
    _serve(Connection(int(sys.argv[1])))
