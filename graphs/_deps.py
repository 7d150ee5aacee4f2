"""What the solve graph runs on, passed in through LangGraph's runtime context (never imported).

``SolveDeps`` holds small typed interfaces: a chat model per role, a ``Sandbox``, a ``Memory`` and an
``Artefacts`` store. Large artefacts (the code of every attempt, test suites, sandbox results) go to
``Artefacts`` by content hash and the checkpointed state carries only the hash: LangGraph copies the
state at every step, and a sandbox result can hold 128 KiB of output tails.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from langchain_core.language_models import BaseChatModel
from langchain_core.runnables import RunnableConfig

from codestill.config import EvolConfig, SelfAlignConfig, SolveConfig
from codestill.schemas import Role
from tools.sandbox import Sandbox

if TYPE_CHECKING:  # the memory package loads numpy and its embedders: an instruction stage needs neither
    from memory import Memory

AGENT_ROLES: tuple[Role, ...] = ("planner", "decomposer", "coder", "tester", "critic")


class Artefacts(Protocol):
    """A content-addressed store of text: ``put`` returns the key that ``get`` takes."""

    def put(self, text: str) -> str: ...

    def get(self, key: str) -> str: ...


def _key(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class MemoryArtefacts:
    """Artefacts of one process (batch runs, tests): gone when the process ends."""

    def __init__(self) -> None:
        self._items: dict[str, str] = {}

    def put(self, text: str) -> str:
        key = _key(text)
        self._items[key] = text
        return key

    def get(self, key: str) -> str:
        return self._items[key]


class SqliteArtefacts:
    """Artefacts in a SQLite file beside a session's checkpoints, so a resumed thread finds them."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()  # nodes run in threads and on the loop; one connection, serialised
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS artefacts (key TEXT PRIMARY KEY, text TEXT NOT NULL)")

    def put(self, text: str) -> str:
        key = _key(text)
        with self._lock:
            self._db.execute("INSERT OR IGNORE INTO artefacts VALUES (?, ?)", (key, text))
        return key

    def get(self, key: str) -> str:
        with self._lock:
            row = self._db.execute("SELECT text FROM artefacts WHERE key = ?", (key,)).fetchone()
        if row is None:
            raise KeyError(key)
        return str(row[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()


class _CallOptions:
    structured: str
    repair_rounds: int
    role_max_tokens: Mapping[str, int]

    def call_options(self, config: RunnableConfig, role: str = "") -> dict[str, Any]:
        """The keywords every agent call takes: the node's config (callbacks, tags), how to ask, and the
        longest reply ``role`` may write (``llm.role_max_tokens``; None: the model's own limit)."""
        return {"config": config, "method": self.structured, "repair_rounds": self.repair_rounds,
                "max_tokens": self.role_max_tokens.get(role)}


@dataclass(frozen=True)
class SolveDeps(_CallOptions):
    """The runtime context of the solve graph. ``models`` maps each agent role to its chat model (they
    may differ: a strong planner, a cheap coder); ``model_names`` gives their specs for the record.
    With ``interactive`` the graph pauses for a person after planning and before accepting."""

    models: Mapping[str, BaseChatModel]
    sandbox: Sandbox
    memory: Memory | None = None
    config: SolveConfig = field(default_factory=SolveConfig)
    artefacts: Artefacts = field(default_factory=MemoryArtefacts)
    model_names: Mapping[str, str] = field(default_factory=dict)
    interactive: bool = False
    structured: str = "auto"
    repair_rounds: int = 1
    role_max_tokens: Mapping[str, int] = field(default_factory=dict)

    def model(self, role: Role) -> BaseChatModel:
        return self.models[role]

    def model_label(self) -> str:
        """One line naming the models: ``spec`` when every role uses one, else ``role=spec, ...``."""
        names = {r: self.model_names.get(r, "") for r in AGENT_ROLES}
        if len(set(names.values())) == 1:
            return next(iter(names.values()))
        return ", ".join(f"{r}={n}" for r, n in names.items())


@dataclass(frozen=True)
class InstructDeps(_CallOptions):
    """The runtime context of the instruction graphs (evol, selfalign): one chat model and their settings."""

    model: BaseChatModel
    evol: EvolConfig = field(default_factory=EvolConfig)
    selfalign: SelfAlignConfig = field(default_factory=SelfAlignConfig)
    structured: str = "auto"
    repair_rounds: int = 1
    role_max_tokens: Mapping[str, int] = field(default_factory=dict)
    llm_concurrency: int = 64  # llm.max_concurrency: the model's connections, what the stages fill by default

    @property
    def evol_concurrency(self) -> int:
        """Lineages evolved at once: ``evol.concurrency``, else one per connection to the server."""
        return self.evol.concurrency or self.llm_concurrency

    @property
    def selfalign_concurrency(self) -> int:
        """Seeds worked on at once: ``selfalign.concurrency``, else one per connection to the server."""
        return self.selfalign.concurrency or self.llm_concurrency
