"""``LocalSandbox``: the sandbox's runner and harness in local processes, without Docker. For tests.

It speaks the same requests to the same runner code (``_runner.py``, served by ``_local_runner.py``)
and judges the replies the same way as the Docker backends: a fresh forked child per run, the same
harness, comparator and report channel, the same statuses and messages, ``RLIMIT_CPU`` and
``RLIMIT_FSIZE``, the wall-clock deadline, the output limits, processes left behind found (the
runner process is a child subreaper) and killed, the work folder wiped after every run. A pool of
``pool_size`` runner processes serves runs at once; one that fails or is tainted is replaced.

**It isolates nothing.** The program runs as the user who runs the tests (root included) on the
host's kernel, network, file system and processes: it can read and write whatever that user can,
open connections, signal or trace that user's processes, fork without bound (there is no pids
limit), fill /tmp, and read other processes' environments through /proc. What it does do: the
program's environment is a fixed minimal one (``ENV``: no variable of the host's, so no keys in it),
its address space is bounded (``RLIMIT_AS``, four times ``memory_mb`` by default: ``MemoryError``, reported as
``oom``; not a memory cgroup), and the interpreter is the base one, without the project's virtual
environment. Never give it code you did not write: it is for tests of the graphs and agents, whose
programs are scripted. What only a container guarantees is listed in ``tools/sandbox/README.md``
("The local backend") and tested on the Docker backends only.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from codestill.config import SandboxConfig
from codestill.schemas import ExecResult, Limits, TestSuite
from tools.sandbox._channel import InfraFault, ProtocolFault, frame_body, frame_length, judged_run, request
from tools.sandbox._runner import HEADER
from tools.sandbox._warm import WarmPool

# All a program sees of an environment (HOME and TMPDIR, its scratch folder, are added per process).
ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1"}
_SCRIPT = Path(__file__).with_name("_local_runner.py")


def interpreter() -> str:
    """The base interpreter, not a virtual environment's: the program sees the standard library (and
    what is installed beside it), not the project's packages."""
    base = getattr(sys, "_base_executable", None)
    return base if base and os.path.exists(base) else sys.executable


class _Runner:
    """One local runner process and its private folder (``base``: the runs' scratch folder and a log)."""

    def __init__(self, proc: asyncio.subprocess.Process, base: str) -> None:
        self.proc, self.base, self.runs = proc, base, 0
        self.ready: dict[str, Any] = {}

    @classmethod
    async def start(cls, address_space: int, timeout: float) -> _Runner:
        base = tempfile.mkdtemp(prefix="codestill-local-")
        root = os.path.join(base, "scratch")
        os.mkdir(root)
        try:
            with open(os.path.join(base, "runner.log"), "wb") as log:
                proc = await asyncio.create_subprocess_exec(
                    interpreter(), "-I", str(_SCRIPT), root, str(address_space),
                    stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=log,
                    env={**ENV, "HOME": root, "TMPDIR": root}, cwd=base)
        except OSError as e:
            shutil.rmtree(base, ignore_errors=True)
            raise InfraFault(f"the local runner could not start: {e}") from None
        this = cls(proc, base)
        try:
            this.ready = await asyncio.wait_for(this._read_frame(), timeout)
            if this.ready.get("op") != "ready":
                raise InfraFault(f"the local runner said {this.ready!r} instead of ready")
        except (TimeoutError, OSError, asyncio.IncompleteReadError, ProtocolFault, InfraFault) as e:
            tail = this.log_tail()
            await this.destroy()
            raise InfraFault(f"the local runner did not start ({type(e).__name__} {e}): {tail}") from None
        except BaseException:
            await this.destroy()
            raise
        return this

    def log_tail(self) -> str:
        try:
            return Path(self.base, "runner.log").read_text(errors="replace")[-2000:]
        except OSError:
            return ""

    async def _read_frame(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        head = await self.proc.stdout.readexactly(HEADER.size)
        return frame_body(await self.proc.stdout.readexactly(frame_length(head)))

    async def request(self, payload: dict[str, Any], timeout: float) -> dict[str, Any]:
        """One request, one reply (``_channel.request``)."""
        assert self.proc.stdin is not None
        return await request(self.proc.stdin, self._read_frame, payload, timeout, f"local runner {self.proc.pid}")

    async def destroy(self) -> None:
        """End of input: the runner sweeps what is left and exits (killed if it does not, at once)."""
        if self.proc.stdin is not None:
            with contextlib.suppress(Exception):
                self.proc.stdin.close()
        try:
            await asyncio.wait_for(self.proc.wait(), 5.0)
        except TimeoutError:
            self._kill()
            await self.proc.wait()
        except asyncio.CancelledError:
            self._kill()
            raise
        finally:
            shutil.rmtree(self.base, ignore_errors=True)

    def _kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.proc.kill()


class LocalSandbox(WarmPool[_Runner]):
    """The ``Sandbox`` interface on local processes: a warm pool (``_warm.WarmPool``) of
    ``config.pool_size`` runner processes.

    FOR TESTS ONLY: it isolates nothing (see the module's docstring). ``address_space_mb`` bounds each
    run's address space (default four times ``config.memory_mb``; 0: unbounded).
    """

    name = "the local sandbox"
    what = "local runner"
    first_retry_s = 0.2

    def __init__(self, config: SandboxConfig | None = None, *, address_space_mb: int | None = None) -> None:
        self.config = config or SandboxConfig()
        mb = 4 * self.config.memory_mb if address_space_mb is None else address_space_mb
        self.address_space = mb << 20
        self._init_pool()
        self._started: asyncio.Task[None] | None = None

    async def _start_worker(self) -> _Runner:
        return await _Runner.start(self.address_space, self.config.start_timeout_s)

    async def _destroy_worker(self, worker: _Runner) -> None:
        await worker.destroy()

    async def start(self) -> None:
        if self._started is None:
            self._started = asyncio.ensure_future(self._fill())
        await asyncio.shield(self._started)

    async def _ensure_started(self) -> None:
        await self.start()

    async def run(self, program: str | bytes, tests: TestSuite | str,
                  limits: Limits | None = None) -> ExecResult:
        """Run ``program`` against ``tests``. Never raises for anything the program does."""
        return await judged_run(self._exchange, program, tests, limits or self.config.limits,
                                self.config.infra_retries, (TimeoutError, InfraFault, OSError))

    async def health(self) -> list[dict[str, Any]]:
        """Ask every runner process (waiting for each to be free) what it holds: its descendants
        (``children``: none between runs), its scratch folder's contents, its memory; for tests."""
        await self.start()

        async def ask(r: _Runner) -> dict[str, Any]:
            return {**await r.request({"op": "health"}, 10.0), "runs": r.runs}

        return await self._ask_each(ask)

    async def close(self) -> None:
        await self._close_pool()

    async def __aenter__(self) -> LocalSandbox:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
