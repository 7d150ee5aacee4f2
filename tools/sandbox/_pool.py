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
from tools.sandbox._warm import GRACE_S, WarmPool


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


class DockerSandbox(WarmPool[Container], _Backend):
    """A warm pool (``_warm.WarmPool``) of ``pool_size`` locked-down containers (default: one per core)."""

    what = "container"
    fix = " Check it with `codestill sandbox check`."

    def __init__(self, config: SandboxConfig | None = None) -> None:
        super().__init__(config)
        self._init_pool()

    async def start(self) -> None:
        await self._connect()
        await self._fill()

    async def _ensure_started(self) -> None:
        if self._client is None:
            await self.start()

    async def _start_worker(self) -> Container:
        return await self._start_container()

    async def _destroy_worker(self, worker: Container) -> None:
        await worker.destroy(self._connected, self._call, self.config.api_timeout_s)

    async def health(self) -> list[dict]:
        """Ask every container (waiting for each to be free) for its state; for tests and checks."""
        async def ask(c: Container) -> dict:
            return {**await c.request({"op": "health"}, 10.0), "container": c.id, "runs": c.runs,
                    "ready_rss_kb": c.ready.get("rss_kb", 0)}

        return await self._ask_each(ask)

    async def close(self) -> None:
        await self._close_pool()
        await _Backend.close(self)


class ColdSandbox(_Backend):
    """One fresh container per run (the ``docker run`` per execution baseline)."""

    async def _exchange(self, req: dict, limits: Limits) -> dict:
        container = await self._start_container()
        try:
            return await container.request(req, timeout=limits.wall_limit_s + GRACE_S)
        finally:
            await container.destroy(self._connected, self._call, self.config.api_timeout_s)

