"""The interfaces the agents and graphs run on, free of any backend.

A graph is handed a ``Sandbox``, a ``Memory`` and an ``Artefacts`` store (and LangChain chat models) in
its runtime context; it never imports Docker, Chroma or an HTTP client. The backends live in
``tools.sandbox`` (Docker), ``memory`` (Chroma) and ``codestill.run`` (SQLite artefacts). For tests, the
fakes beside them pass the same conformance suites (``tests/tools/sandbox``, ``tests/memory``) and load no
backend: ``tools.sandbox.LocalSandbox`` (the sandbox's harness in local processes; it isolates nothing)
and ``memory.FakeMemory`` (in-process, no Chroma, no model).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal, Protocol

from codestill.schemas import ExecResult, Limits, MemoryHit, Module, ModuleSpec, TestSuite

__all__ = ["AddResult", "Artefacts", "Memory", "MemoryArtefacts", "Sandbox", "artefact_key"]


class Sandbox(Protocol):
    """Runs untrusted code: ``await run(program, tests, limits) -> ExecResult``. A failure of the code
    is a result (its status says which), never an exception."""

    async def run(self, program: str | bytes, tests: TestSuite | str,
                  limits: Limits | None = None) -> ExecResult: ...


@dataclass(frozen=True)
class AddResult:
    """What ``Memory.aadd`` did with a module."""

    status: Literal["added", "duplicate", "near_duplicate", "unverified", "invalid"]
    id: str | None  # the record that now holds the module (None when it was refused)
    reason: str = ""


class Memory(Protocol):
    """What the agent graph needs from a module memory."""

    async def asearch(self, spec: ModuleSpec, k: int = 5, min_score: float | None = None,
                      count: bool = True) -> list[MemoryHit]: ...

    async def aadd(self, module: Module) -> AddResult: ...

    async def amark_reused(self, ids: list[str]) -> None: ...


class Artefacts(Protocol):
    """A content-addressed store of text: ``put`` returns the key that ``get`` takes."""

    def put(self, text: str) -> str: ...

    def get(self, key: str) -> str: ...


def artefact_key(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class MemoryArtefacts:
    """Artefacts of one process (batch runs, tests): gone when the process ends."""

    def __init__(self) -> None:
        self._items: dict[str, str] = {}

    def put(self, text: str) -> str:
        key = artefact_key(text)
        self._items[key] = text
        return key

    def get(self, key: str) -> str:
        return self._items[key]
