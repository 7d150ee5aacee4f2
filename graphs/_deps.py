"""What the solve graph runs on, passed in through LangGraph's runtime context (never imported).

``SolveDeps`` holds small typed interfaces: a chat model per role, a ``Sandbox``, a ``Memory`` and an
``Artefacts`` store. Large artefacts (the code of every attempt, test suites, sandbox results) go to
``Artefacts`` by content hash and the checkpointed state carries only the hash: LangGraph copies the
state at every step, and a sandbox result can hold 128 KiB of output tails.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.runnables import RunnableConfig
from langgraph.runtime import Runtime

from codestill.config import EvolConfig, SelfAlignConfig, SolveConfig
from codestill.ports import Artefacts, Memory, MemoryArtefacts, Sandbox
from codestill.schemas import Role

AGENT_ROLES: tuple[Role, ...] = ("planner", "decomposer", "coder", "tester", "critic")


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


def node(fn: Callable[[Any, RunnableConfig, Runtime[Any]], Awaitable[dict[str, Any]]]) -> Any:
    """``fn`` as ``StateGraph.add_node`` takes it. LangGraph hands a node its config and runtime by the
    parameters' names, but its ``StateNode`` type lists no node taking ``(state, config, runtime)``, so a
    type checker refuses such nodes; this passes them through unchanged, checked for that shape."""
    return fn
