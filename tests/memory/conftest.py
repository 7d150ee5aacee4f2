"""Fixtures for the memory suite: one conformance suite over every backend: an embedded store in a
temporary folder, a real Chroma server (`chroma run`, shipped with chromadb) on a loopback port, and
the in-process fake (``FakeMemory``: no Chroma, no model; a bag-of-words similarity, no hubness
discount). The tests of retrieval quality, hubness, batching and the stores' errors are the real
backends' own and run on them alone."""

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
from memory import FakeMemory, FakeStore, ModuleMemory, SentenceTransformerEmbedder
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


@pytest.fixture(params=["embedded", "server", "fake"])
def memory_kind(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def memory_config(memory_kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> MemoryConfig:
    if memory_kind != "server":  # the fake keeps its store in the process; the path only names it
        return MemoryConfig(path=tmp_path / "memory")
    # One collection per test keeps the tests on the shared server apart.
    url = request.getfixturevalue("chroma_server")
    return MemoryConfig(url=url, collection=f"t-{uuid.uuid4().hex[:12]}")


Opened = ModuleMemory | FakeMemory


@pytest.fixture
def open_memory(memory_kind: str, memory_config: MemoryConfig,
                embedder: SentenceTransformerEmbedder) -> Iterator[Callable[..., Opened]]:
    """``open_memory(**changes)``: the test's store opened again (with these config changes); on the fake,
    memories opened on one location share a ``FakeStore``, as two ``ModuleMemory`` share a folder."""
    opened: list[Opened] = []
    stores: dict[tuple, FakeStore] = {}

    def make(**changes: object) -> Opened:
        config = memory_config.model_copy(update=changes)
        m: Opened
        if memory_kind == "fake":
            m = FakeMemory(config, store=stores.setdefault((config.path, config.url, config.collection), FakeStore()))
        else:
            m = ModuleMemory(config, embedder=embedder)
        opened.append(m)
        return m

    yield make
    for m in opened:
        m.close()


@pytest.fixture
def another_store(memory_config: MemoryConfig, tmp_path: Path) -> dict[str, object]:
    """The config changes for ``open_memory`` that open a second, empty store of the same backend."""
    if memory_config.url:
        return {"collection": f"t-{uuid.uuid4().hex[:12]}"}
    return {"path": tmp_path / "another"}


def module(code: str, name: str | None = None, description: str = "", verified: bool = True,
           trajectory_id: str | None = "traj-1") -> Module:
    info = function_info(code, name)
    return Module(spec=ModuleSpec(name=info.name, signature=info.signature, description=description), code=code,
                  verified=verified, task_id="mbpp/2", trajectory_id=trajectory_id,
                  verification=Verification(run_id="run-1", tests_passed=3, tests_total=3) if verified else None)
