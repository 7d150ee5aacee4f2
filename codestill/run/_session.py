"""An interactive session of the solve graph: the stores it needs, open for as long as the session runs.

``open_session`` opens what a session runs on through ``open_deps(settings, "session")`` (models per role,
traces, the module memory, the Docker sandbox pool, the checkpointer on ``solve.checkpoints`` and the
artefact store beside it) and compiles the graph over them. ``Session.advance``
runs a thread until it pauses for a person (an ``interrupt`` in ``review_plans`` or ``confirm``) or
ends; the caller answers with ``Command(resume=...)`` and advances again. Several tasks in a row
(``codestill chat``) share one session. Everything heavy is imported when a session opens, never when
the CLI module is imported. With ``llm.structured=auto`` the session asks each endpoint once which
structured method it honours (``codestill._capability``) and its agents use that one
(``Session.structured``); give ``probes`` to share what was found between sessions of one process.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from codestill.config import Settings
from codestill.errors import SessionError
from codestill.schemas import Task, Trajectory

if TYPE_CHECKING:
    from codestill._capability import StructuredProbes

AGENTS: tuple[str, ...] = ("planner", "decomposer", "coder", "tester", "critic")  # graphs.AGENT_ROLES
Event = Callable[[tuple[str, ...], str, Any], None]  # (namespace, stream mode, data)



def model_specs(settings: Settings, model: str | None, roles: Mapping[str, str | None]) -> dict[str, str]:
    """The chat model spec per agent role: a role flag > --model > solve.models[role] > llm.model."""
    unknown = sorted(set(settings.solve.models) - set(AGENTS))
    if unknown:
        raise SessionError(f"solve.models names unknown roles {unknown}; the roles are {', '.join(AGENTS)}")
    return {r: roles.get(r) or model or settings.solve.models.get(r) or settings.llm.model for r in AGENTS}


def new_thread_id() -> str:
    return uuid.uuid4().hex[:12]


def task_id(instruction: str) -> str:
    return "user/" + hashlib.sha256(instruction.encode()).hexdigest()[:10]


@dataclass
class Step:
    """Where a thread stands after ``advance``: paused (``interrupt`` holds the payload) or done."""

    thread_id: str
    interrupt: dict[str, Any] | None = None
    trajectory: Trajectory | None = None
    task: Task | None = None


@dataclass
class Session:
    graph: Any
    deps: Any
    settings: Settings
    tracer: Any = None
    stack: AsyncExitStack = field(default_factory=AsyncExitStack)
    traces: dict[str, list[str]] = field(default_factory=dict)  # thread id -> trace ids of its runs

    @property
    def structured(self) -> str:
        """The structured method the agents use (``llm.structured``, "auto" resolved by probing)."""
        return str(self.deps.structured)

    def config(self, thread_id: str, task: Task | None = None, run_id: uuid.UUID | None = None) -> dict[str, Any]:
        from graphs import recursion_limit

        config: dict[str, Any] = {"configurable": {"thread_id": thread_id},
                                  "recursion_limit": recursion_limit(self.deps)}
        if run_id is not None:
            config.update(run_id=run_id, run_name="solve", callbacks=[self.tracer] if self.tracer else [],
                          metadata={"task_id": task.id} if task else {})
        return config

    async def snapshot(self, thread_id: str) -> Any:
        return await self.graph.aget_state(self.config(thread_id))

    async def step_of(self, thread_id: str) -> Step | None:
        """The thread's checkpoint as a ``Step``; None when there is no such thread."""
        snap = await self.snapshot(thread_id)
        if not snap.values and not snap.next:
            return None
        task = snap.values.get("task")
        if snap.interrupts:
            return Step(thread_id, interrupt=dict(snap.interrupts[0].value), task=task)
        if not snap.next and snap.values.get("trajectory") is not None:
            return Step(thread_id, trajectory=snap.values["trajectory"], task=task)
        return Step(thread_id, task=task)  # stopped between steps (a killed process): go on from there

    async def advance(self, thread_id: str, graph_input: Any, on_event: Event | None = None,
                      task: Task | None = None) -> Step:
        """Run the thread from ``graph_input`` ({"task": ...}, a ``Command(resume=...)`` or None) until
        it pauses or ends; ``on_event`` sees every (namespace, mode, data) the graph streams."""
        from langgraph.errors import GraphRecursionError

        run_id = uuid.uuid4()
        self.traces.setdefault(thread_id, []).append(str(run_id))
        config = self.config(thread_id, task, run_id)
        try:
            # "updates" brings the interrupts; "tasks" every node's whole result (a branch subgraph's
            # "updates" carry only its output keys, not what its nodes wrote on the way).
            # durability "sync": each step's checkpoint is on disk before the next starts (a killed
            # session loses nothing it showed).
            async for ns, mode, data in self.graph.astream(graph_input, config, context=self.deps,
                                                           stream_mode=["updates", "tasks"], subgraphs=True,
                                                           durability="sync"):
                if on_event is not None:
                    on_event(ns, mode, data)
        except GraphRecursionError:
            raise SessionError(f"session {thread_id} went past LangGraph's step limit without ending (a loop "
                               "in the graph); see the trace with `codestill traces show "
                               f"{run_id}`") from None
        finally:
            if self.tracer is not None:
                self.tracer.flush(5.0)
        step = await self.step_of(thread_id)
        if step is None:  # cannot happen after a run; be clear if it does
            raise SessionError(f"session {thread_id} left no checkpoint in {self.settings.solve.checkpoints}")
        return step

    async def aclose(self) -> None:
        await self.stack.aclose()


async def open_session(settings: Settings, specs: Mapping[str, str], *, interactive: bool,
                       probes: StructuredProbes | None = None) -> Session:
    """Open every store a session needs (``open_deps``'s session mode; closed by ``Session.aclose``, also
    when opening fails). ``probes``: what earlier sessions of this process found out about the endpoints."""
    from codestill.run._deps import open_deps
    from graphs import build_graph

    stack = AsyncExitStack()
    try:
        deps = await stack.enter_async_context(open_deps(settings, "session", specs=specs, interactive=interactive,
                                                         probes=probes))
        return Session(graph=build_graph(deps.checkpointer), deps=deps.solve, settings=settings, tracer=deps.tracer,
                       stack=stack)
    except BaseException:
        await stack.aclose()
        raise
