"""A warm pool of workers that each serve one run at a time: the Docker containers of ``DockerSandbox``
and the local runner processes of ``LocalSandbox``.

A worker is reused only after a clean run; one that was tainted (time-out, OOM, a process left to
sweep, pids not back to baseline, a protocol error) or failed is destroyed and replaced in the
background, with a growing pause between failed starts. Workers are also recycled after
``recycle_after`` runs. A backend says how to start and destroy one worker; the pool does the rest.
"""

from __future__ import annotations

import abc
import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Generic, Protocol, TypeVar

from codestill.config import SandboxConfig
from codestill.errors import SandboxError
from codestill.schemas import Limits
from tools.sandbox._channel import InfraFault
from tools.sandbox._verdict import tainted

GRACE_S = 10.0  # beyond the wall limit, for the runner's own sweep and reply


class Worker(Protocol):
    runs: int

    async def request(self, payload: dict[str, Any], timeout: float) -> dict[str, Any]: ...


W = TypeVar("W", bound=Worker)


class WarmPool(abc.ABC, Generic[W]):
    config: SandboxConfig
    name = "the sandbox pool"  # how errors name the pool
    what = "worker"  # ... and one of its workers
    fix = ""  # what a failed start's error tells the user to do
    first_retry_s = 0.5  # the pause after a failed start, doubled up to 10 s

    def _init_pool(self) -> None:
        self._idle: asyncio.Queue[W] = asyncio.Queue()
        self._all: set[W] = set()
        self._background: set[asyncio.Task[None]] = set()
        self._start_error = ""
        self._closed = False

    @abc.abstractmethod
    async def _start_worker(self) -> W: ...

    @abc.abstractmethod
    async def _destroy_worker(self, worker: W) -> None: ...

    @abc.abstractmethod
    async def _ensure_started(self) -> None:
        """Start the pool if it is not started (a first run may come before ``start``)."""

    async def _fill(self) -> None:
        """Start ``pool_size`` workers at once; if any fails, close the pool and say why."""
        started = await asyncio.gather(*(self._start_worker() for _ in range(self.config.pool_size)),
                                       return_exceptions=True)
        for item in started:
            if not isinstance(item, BaseException):
                self._all.add(item)
                self._idle.put_nowait(item)
        errors = [e for e in started if isinstance(e, BaseException)]
        if errors:
            await self.close()
            raise SandboxError(f"Could not start {self.name}: {type(errors[0]).__name__}: {errors[0]}.{self.fix}")

    async def _exchange(self, req: dict[str, Any], limits: Limits) -> dict[str, Any]:
        """Send one request to a free worker; return its raw reply (``judged_run`` judges it)."""
        if self._closed:
            raise SandboxError("this sandbox is closed")
        await self._ensure_started()
        try:
            worker = await asyncio.wait_for(self._idle.get(), self.config.start_timeout_s)
        except TimeoutError:
            raise InfraFault(f"no {self.what} became free in {self.config.start_timeout_s:g} s; "
                             f"last start error: {self._start_error or 'none'}") from None
        try:
            raw = await worker.request(req, timeout=limits.wall_limit_s + GRACE_S)
        except BaseException:
            self._replace(worker)
            raise
        worker.runs += 1
        if tainted(raw) or worker.runs >= self.config.recycle_after:
            self._replace(worker)
        else:
            self._idle.put_nowait(worker)
        return raw

    def _replace(self, old: W) -> None:
        self._all.discard(old)
        task = asyncio.get_running_loop().create_task(self._replace_task(old))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _replace_task(self, old: W) -> None:
        await self._destroy_worker(old)
        delay = self.first_retry_s
        while not self._closed:
            try:
                new = await self._start_worker()
            except Exception as e:
                self._start_error = f"{type(e).__name__}: {e}"
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
                continue
            if self._closed:
                await self._destroy_worker(new)
                return
            self._all.add(new)
            self._idle.put_nowait(new)
            return

    async def settle(self) -> None:
        """Wait until every replacement under way has finished."""
        while self._background:
            await asyncio.gather(*list(self._background), return_exceptions=True)

    async def _ask_each(self, ask: Callable[[W], Awaitable[dict[str, Any]]]) -> list[dict[str, Any]]:
        """``ask`` every worker (waiting for each to be free, after replacements settle); for health checks."""
        await self.settle()
        workers = [await self._idle.get() for _ in range(len(self._all))]
        try:
            return [await ask(w) for w in workers]
        finally:
            for w in workers:
                self._idle.put_nowait(w)

    async def _close_pool(self) -> None:
        """Stop replacing, then destroy every worker."""
        self._closed = True
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        await asyncio.gather(*(self._destroy_worker(w) for w in list(self._all)), return_exceptions=True)
        self._all.clear()

    @abc.abstractmethod
    async def close(self) -> None: ...
