"""LangGraph state machines. ``solve``: the agent team that turns one instruction into a verified
``Trajectory``; its dependencies (chat models per role, sandbox, memory, artefacts) come in as ``SolveDeps``.
``evol`` (Code Evol-Instruct, rounds in ``codestill.run._rounds``) and ``selfalign`` (SelfCodeAlign) make the
instructions; theirs (one chat model and their settings) as ``InstructDeps``."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from langchain_core.callbacks import BaseCallbackHandler

from codestill.ports import Artefacts, MemoryArtefacts
from codestill.schemas import Task, Trajectory
from graphs._deps import AGENT_ROLES, InstructDeps, SolveDeps
from graphs.solve import build_graph


def recursion_limit(deps: SolveDeps) -> int:
    """Enough super-steps for every bounded loop, so a budget, never LangGraph, ends a task."""
    c = deps.config
    per_branch = 6 + 3 * (c.max_repairs + 1)
    return 16 + (c.max_replans + 1) * (8 + per_branch) + 8 * (c.max_replans + 1)


async def solve(task: Task, deps: SolveDeps, *, graph: Any = None, thread_id: str | None = None,
                callbacks: list[BaseCallbackHandler] | None = None,
                durability: Literal["sync", "async", "exit"] | None = None) -> Trajectory:
    """Run the solve graph on one task to the end (no interrupts: ``deps.interactive`` must be off).

    ``durability`` matters only with a checkpointing ``graph``: "exit" writes one checkpoint at the end
    (batch runs, whose resume point is their ledger), "async"/"sync" one per step (sessions)."""
    graph = graph or build_graph(reviews=False)
    config: dict[str, Any] = {"configurable": {"thread_id": thread_id or uuid.uuid4().hex},
                              "recursion_limit": recursion_limit(deps), "callbacks": callbacks or [],
                              "run_name": "solve", "metadata": {"task_id": task.id}}
    extra: dict[str, Any] = {"durability": durability} if durability else {}
    out = await graph.ainvoke({"task": task}, config=config, context=deps, **extra)
    return out["trajectory"]


__all__ = ["AGENT_ROLES", "Artefacts", "InstructDeps", "MemoryArtefacts", "SolveDeps", "build_graph",
           "recursion_limit", "solve"]
