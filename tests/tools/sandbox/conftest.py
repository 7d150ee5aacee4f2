"""Fixtures for the sandbox suites: a real Docker engine, a warm pool, the cold baseline, and the local
backend (``LocalSandbox``: the same runner and harness in local processes, for tests; it isolates nothing).

Two parameters split the suites by what a test checks:

- ``backend`` (warm, cold, local) is the conformance parameter: behaviour every ``Sandbox`` must have
  the same, whatever runs the program. Statuses and messages, the harness's defences against fake
  passes (the comparator, the report channel, rebinding), CPU and wall time limits, output and file
  size limits, processes left behind, stdin/stdout cases, legitimate programs that must pass.
- ``container`` (warm, cold) is for isolation guarantees: what only a locked-down container gives and
  the local backend, by design, does not (tools/sandbox/README.md, "The local backend"). No network,
  a read-only root and a non-root user, a bounded /tmp, the pids limit, the memory cgroup, a PID
  namespace whose init is the runner (so its channel is out of reach), no host secrets readable in
  other processes. Such a test would fail on the local backend, or worse, reach the host: it never
  runs there. The hostile corpus marks each such case ``Case(container=True)``.

None of the Docker tests is skipped when the engine is missing: they fail with the fix (`make setup`).
The sandboxes live on one event loop in a background thread (an anyio blocking portal), so plain
test functions can share a session-wide pool.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import anyio.from_thread
import pytest

from codestill.config import SandboxConfig
from codestill.errors import SandboxError
from codestill.schemas import ExecResult, Limits, TestSuite
from tools.sandbox import ColdSandbox, DockerSandbox, LocalSandbox, connect, require_image

# Set on the host before any container starts; no program may ever see it.
HOST_SECRET = "sk-codestill-test-secret-0123456789"
FAST = Limits(cpu_s=1.0)


class Runner:
    """A synchronous face for one sandbox, for tests."""

    def __init__(self, portal, sandbox, kind: str = "") -> None:
        self.portal, self.sandbox, self.kind = portal, sandbox, kind

    def __call__(self, program: str | bytes, tests: TestSuite | str, limits: Limits = FAST) -> ExecResult:
        return self.portal.call(self.sandbox.run, program, tests, limits)

    def call(self, fn, *args):
        return self.portal.call(fn, *args)


@pytest.fixture(scope="session")
def loop() -> Iterator[anyio.from_thread.BlockingPortal]:
    """The event loop every sandbox of the session lives on."""
    with anyio.from_thread.start_blocking_portal() as p:
        yield p


@pytest.fixture(scope="session")
def portal(loop) -> anyio.from_thread.BlockingPortal:
    """The loop, once a Docker engine with the image is known to be there."""
    try:
        config = SandboxConfig()
        require_image(connect(config), config)
    except SandboxError as e:
        pytest.fail(f"The sandbox tests need a Docker engine and the image: {e}", pytrace=False)
    return loop


@pytest.fixture(scope="session")
def host_secret() -> Iterator[str]:
    old = os.environ.get("OPENAI_API_KEY")
    os.environ["OPENAI_API_KEY"] = HOST_SECRET
    yield HOST_SECRET
    if old is None:
        os.environ.pop("OPENAI_API_KEY", None)
    else:
        os.environ["OPENAI_API_KEY"] = old


@pytest.fixture(scope="session")
def warm(portal, host_secret) -> Iterator[Runner]:
    sandbox = DockerSandbox(SandboxConfig(pool_size=2))
    portal.call(sandbox.start)
    yield Runner(portal, sandbox, "warm")
    portal.call(sandbox.close)


@pytest.fixture(scope="session")
def cold(portal, host_secret) -> Iterator[Runner]:
    sandbox = ColdSandbox(SandboxConfig())
    portal.call(sandbox.start)
    yield Runner(portal, sandbox, "cold")
    portal.call(sandbox.close)


@pytest.fixture(scope="session")
def local(loop, host_secret) -> Iterator[Runner]:
    sandbox = LocalSandbox(SandboxConfig(pool_size=2))
    loop.call(sandbox.start)
    yield Runner(loop, sandbox, "local")
    loop.call(sandbox.close)


@pytest.fixture(params=["warm", "cold", "local"])
def backend(request) -> Runner:
    """The conformance parameter: every backend of the Sandbox interface."""
    return request.getfixturevalue(request.param)


@pytest.fixture(params=["warm", "cold"])
def container(request) -> Runner:
    """The isolation parameter: the backends that run programs in a container (never the local one)."""
    return request.getfixturevalue(request.param)
