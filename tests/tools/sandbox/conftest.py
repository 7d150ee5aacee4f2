"""Fixtures for the sandbox suites: a real Docker engine, a warm pool and the cold baseline.

None of these tests is skipped when the engine is missing: they fail with the fix (`make setup`).
The pools live on one event loop in a background thread (an anyio blocking portal), so plain
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
from tools.sandbox import ColdSandbox, DockerSandbox, connect, require_image

# Set on the host before any container starts; no program may ever see it.
HOST_SECRET = "sk-codestill-test-secret-0123456789"
FAST = Limits(cpu_s=1.0)


class Runner:
    """A synchronous face for one sandbox, for tests."""

    def __init__(self, portal, sandbox) -> None:
        self.portal, self.sandbox = portal, sandbox

    def __call__(self, program: str | bytes, tests: TestSuite | str, limits: Limits = FAST) -> ExecResult:
        return self.portal.call(self.sandbox.run, program, tests, limits)

    def call(self, fn, *args):
        return self.portal.call(fn, *args)


@pytest.fixture(scope="session")
def portal() -> Iterator[anyio.from_thread.BlockingPortal]:
    try:
        config = SandboxConfig()
        require_image(connect(config), config)
    except SandboxError as e:
        pytest.fail(f"The sandbox tests need a Docker engine and the image: {e}", pytrace=False)
    with anyio.from_thread.start_blocking_portal() as p:
        yield p


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
    yield Runner(portal, sandbox)
    portal.call(sandbox.close)


@pytest.fixture(scope="session")
def cold(portal, host_secret) -> Iterator[Runner]:
    sandbox = ColdSandbox(SandboxConfig())
    portal.call(sandbox.start)
    yield Runner(portal, sandbox)
    portal.call(sandbox.close)


@pytest.fixture(params=["warm", "cold"])
def backend(request) -> Runner:
    """The conformance parameter: every backend of the Sandbox interface."""
    return request.getfixturevalue(request.param)
