"""The sandbox backends: a warm pool of containers, and one container per run (the baseline).

Both speak to the same runner and return the same verdicts; the conformance suite in
tests/tools/sandbox runs over both.
"""

from __future__ import annotations

import abc
import asyncio
import functools
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import docker
import docker.errors

from codestill.config import SandboxConfig
from codestill.errors import SandboxError
from codestill.schemas import ExecResult, Limits, TestSuite
from tools.sandbox._channel import InfraFault, judged_run
from tools.sandbox._container import Container, runner_source
from tools.sandbox._engine import connect
from tools.sandbox._image import require_image
from tools.sandbox._owner import reap_orphans
from tools.sandbox._verdict import tainted

_GRACE_S = 10.0  # beyond the wall limit, for the runner's own sweep and reply


class _Backend(abc.ABC):
    """What both backends share: the engine client, deadlines on every Docker call, the verdict."""

    def __init__(self, config: SandboxConfig | None = None) -> None:
        self.config = config or SandboxConfig()
        self._client: docker.DockerClient | None = None
        self._executor = ThreadPoolExecutor(max_workers=self.config.pool_size + 4,
                                            thread_name_prefix="codestill-docker")
        self._source = runner_source()
        self.reaped = 0  # orphaned containers removed when this backend connected

    async def _call(self, fn, *args, timeout: float | None = None) -> Any:
        """Run a blocking Docker SDK call in a thread with a client-side deadline:
        some SDK calls have no timeout of their own."""
        loop = asyncio.get_running_loop()
        fut = loop.run_in_executor(self._executor, functools.partial(fn, *args))
        return await asyncio.wait_for(fut, timeout or self.config.api_timeout_s)

    @property
    def _connected(self) -> docker.DockerClient:
        """The client ``_connect`` made (every container was started through it)."""
        assert self._client is not None
        return self._client

    async def _connect(self) -> docker.DockerClient:
        if self._client is None:
            try:
                client: docker.DockerClient = await self._call(connect, self.config)
                await self._call(require_image, client, self.config)
                # Containers of a client that was SIGKILLed before its containers could go.
                self.reaped = await self._call(reap_orphans, client)
            except TimeoutError:
                raise SandboxError(
                    f"The Docker engine did not answer within {self.config.api_timeout_s:g} s. "
                    "Check it with `codestill sandbox check`."
                ) from None
            self._client = client
        return self._client

    async def _start_container(self) -> Container:
        client = await self._connect()
        return await Container.start(client, self.config, self._call, self._source)

    async def run(self, program: str | bytes, tests: TestSuite | str,
                  limits: Limits | None = None) -> ExecResult:
        """Run ``program`` against ``tests``. Never raises for anything the program does."""
        return await judged_run(self._exchange, program, tests, limits or self.config.limits,
                                self.config.infra_retries,
                                (TimeoutError, InfraFault, docker.errors.DockerException, OSError))

    @abc.abstractmethod
    async def _exchange(self, req: dict, limits: Limits) -> dict:
        """Send one request to a container of this backend's choosing; return the raw reply."""

    async def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def __aenter__(self):
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        await self._connect()


class DockerSandbox(_Backend):
    """A warm pool of ``pool_size`` locked-down containers (default: one per core).

    A container is reused only after a clean run; one that was tainted (time-out, OOM, a
    process left to sweep, pids not back to baseline, a protocol error) is destroyed and
    replaced in the background. Containers are also recycled after ``recycle_after`` runs.
    """

    def __init__(self, config: SandboxConfig | None = None) -> None:
        super().__init__(config)
        self._idle: asyncio.Queue[Container] = asyncio.Queue()
        self._background: set[asyncio.Task] = set()
        self._all: set[Container] = set()
        self._start_error: str = ""
        self._closed = False

    async def start(self) -> None:
        await self._connect()
        started = await asyncio.gather(
            *(self._start_container() for _ in range(self.config.pool_size)), return_exceptions=True)
        for item in started:
            if isinstance(item, Container):
                self._all.add(item)
                self._idle.put_nowait(item)
        errors = [e for e in started if isinstance(e, BaseException)]
        if errors:
            await self.close()
            raise SandboxError(f"Could not start the sandbox pool: {type(errors[0]).__name__}: {errors[0]}. "
                               "Check it with `codestill sandbox check`.")

    async def _exchange(self, req: dict, limits: Limits) -> dict:
        if self._closed:
            raise SandboxError("this sandbox is closed")
        if self._client is None:
            await self.start()
        try:
            container = await asyncio.wait_for(self._idle.get(), self.config.start_timeout_s)
        except TimeoutError:
            raise InfraFault(f"no container became free in {self.config.start_timeout_s:g} s; "
                             f"last start error: {self._start_error or 'none'}") from None
        try:
            raw = await container.request(req, timeout=limits.wall_limit_s + _GRACE_S)
        except BaseException:
            self._replace(container)
            raise
        container.runs += 1
        if tainted(raw) or container.runs >= self.config.recycle_after:
            self._replace(container)
        else:
            self._idle.put_nowait(container)
        return raw

    def _replace(self, old: Container) -> None:
        self._all.discard(old)
        task = asyncio.get_running_loop().create_task(self._replace_task(old))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _replace_task(self, old: Container) -> None:
        await old.destroy(self._connected, self._call, self.config.api_timeout_s)
        delay = 0.5
        while not self._closed:
            try:
                new = await self._start_container()
            except Exception as e:
                self._start_error = f"{type(e).__name__}: {e}"
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
                continue
            if self._closed:
                await new.destroy(self._connected, self._call, self.config.api_timeout_s)
                return
            self._all.add(new)
            self._idle.put_nowait(new)
            return

    async def health(self) -> list[dict]:
        """Ask every container (waiting for each to be free) for its state; for tests and checks."""
        await self.settle()
        containers = [await self._idle.get() for _ in range(len(self._all))]
        try:
            return [{**await c.request({"op": "health"}, 10.0), "container": c.id, "runs": c.runs,
                     "ready_rss_kb": c.ready.get("rss_kb", 0)}
                    for c in containers]
        finally:
            for c in containers:
                self._idle.put_nowait(c)

    async def settle(self) -> None:
        """Wait until every replacement under way has finished."""
        while self._background:
            await asyncio.gather(*list(self._background), return_exceptions=True)

    async def close(self) -> None:
        self._closed = True
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        if self._client is not None:
            await asyncio.gather(*(c.destroy(self._client, self._call, self.config.api_timeout_s)
                                   for c in list(self._all)), return_exceptions=True)
        self._all.clear()
        await super().close()


class ColdSandbox(_Backend):
    """One fresh container per run (the ``docker run`` per execution baseline)."""

    async def _exchange(self, req: dict, limits: Limits) -> dict:
        container = await self._start_container()
        try:
            return await container.request(req, timeout=limits.wall_limit_s + _GRACE_S)
        finally:
            await container.destroy(self._connected, self._call, self.config.api_timeout_s)

