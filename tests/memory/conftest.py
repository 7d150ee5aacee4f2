"""Fixtures for the memory suite: one conformance suite over both backends, an embedded store in a
temporary folder and a real Chroma server (`chroma run`, shipped with chromadb) on a loopback port."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from codestill.config import MemoryConfig
from codestill.schemas import Module, ModuleSpec, Verification
from memory import ModuleMemory, SentenceTransformerEmbedder
from tools.code import function_info

CHROMA = Path(sys.executable).parent / "chroma"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def embedder() -> SentenceTransformerEmbedder:
    """One loaded model for the whole session; every memory in the tests shares it."""
    return SentenceTransformerEmbedder()


@contextlib.contextmanager
def running_chroma(path: Path, log: Path) -> Iterator[str]:
    """A real Chroma server (`chroma run`) on a free loopback port, stopped on exit; yields its URL."""
    import chromadb
    from chromadb.config import Settings

    port = _free_port()
    with log.open("wb") as out:
        proc = subprocess.Popen([str(CHROMA), "run", "--path", str(path), "--host", "127.0.0.1", "--port", str(port)],
                                stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while True:
        try:
            chromadb.HttpClient(host="127.0.0.1", port=port, settings=Settings(anonymized_telemetry=False)).heartbeat()
            break
        except Exception:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"chroma run did not start: {log.read_text()[-2000:]}")
            time.sleep(0.3)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture(scope="session")
def chroma_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_chroma(tmp_path_factory.mktemp("chroma-server"),
                        tmp_path_factory.mktemp("chroma-log") / "server.log") as url:
        yield url


@pytest.fixture(params=["embedded", "server"])
def memory_config(request: pytest.FixtureRequest, tmp_path: Path) -> MemoryConfig:
    if request.param == "embedded":
        return MemoryConfig(path=tmp_path / "memory")
    # One collection per test keeps the tests on the shared server apart.
    url = request.getfixturevalue("chroma_server")
    return MemoryConfig(url=url, collection=f"t-{uuid.uuid4().hex[:12]}")


@pytest.fixture
def open_memory(memory_config: MemoryConfig, embedder: SentenceTransformerEmbedder) -> Iterator[Callable[..., ModuleMemory]]:
    opened: list[ModuleMemory] = []

    def make(**changes: object) -> ModuleMemory:
        m = ModuleMemory(memory_config.model_copy(update=changes), embedder=embedder)
        opened.append(m)
        return m

    yield make
    for m in opened:
        m.close()


def module(code: str, name: str | None = None, description: str = "", verified: bool = True,
           trajectory_id: str | None = "traj-1") -> Module:
    info = function_info(code, name)
    return Module(spec=ModuleSpec(name=info.name, signature=info.signature, description=description), code=code,
                  verified=verified, task_id="mbpp/2", trajectory_id=trajectory_id,
                  verification=Verification(run_id="run-1", tests_passed=3, tests_total=3) if verified else None)
