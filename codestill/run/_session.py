"""An interactive session of the solve graph: the stores it needs, open for as long as the session runs.

``open_session`` builds a chat model per role, then opens the trace store (``SqliteTracer``), the module
memory, the Docker sandbox pool, the checkpointer (``codestill.run._checkpoints`` on ``solve.checkpoints``) and the
artefact store beside it (``SqliteArtefacts``), and compiles the graph over them. ``Session.advance``
runs a thread until it pauses for a person (an ``interrupt`` in ``review_plans`` or ``confirm``) or
ends; the caller answers with ``Command(resume=...)`` and advances again. Several tasks in a row
(``codestill chat``) share one session. Everything heavy is imported when a session opens, never when
the CLI module is imported. With ``llm.structured=auto`` the session asks each endpoint once which
structured method it honours (``codestill._capability``) and its agents use that one
(``Session.structured``); give ``probes`` to share what was found between sessions of one process.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Callable, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
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


def artefacts_path(checkpoints: Path) -> Path:
    """The artefact store of a checkpoint file: ``sessions.sqlite`` -> ``sessions.artefacts.sqlite``."""
    return checkpoints.with_name(checkpoints.stem + ".artefacts" + (checkpoints.suffix or ".sqlite"))


def _secrets(settings: Settings) -> list[str]:
    keys = [settings.llm.api_key, settings.memory.api_key]
    out = [k.get_secret_value() for k in keys if k is not None and k.get_secret_value()]
    if os.environ.get("OPENAI_API_KEY"):
        out.append(os.environ["OPENAI_API_KEY"])
    return out


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


def build_models(settings: Settings, specs: Mapping[str, str], stack: AsyncExitStack,
                 extra: Mapping[str, str] | None = None) -> dict[str, Any]:
    """A chat model per agent role (and per ``extra`` name), one client per (spec, temperature): roles on
    the same endpoint share its client and its concurrency limit. Each is closed with ``stack``."""
    from codestill.llm import aclose, make_chat_model

    built: dict[tuple[str, float], Any] = {}
    models: dict[str, Any] = {}
    for role, spec in {**specs, **(extra or {})}.items():
        llm = settings.llm
        if role == "planner" and settings.solve.plans > 1:
            llm = llm.model_copy(update={"temperature": settings.solve.plan_temperature})
        key = (spec, llm.temperature)
        if key not in built:
            built[key] = make_chat_model(spec, llm)
            stack.push_async_callback(aclose, built[key])
        models[role] = built[key]
    return models


async def open_session(settings: Settings, specs: Mapping[str, str], *, interactive: bool,
                       probes: StructuredProbes | None = None) -> Session:
    """Open every store a session needs (closed by ``Session.aclose``, also when opening fails).
    ``probes``: what earlier sessions of this process found out about the endpoints (else a fresh cache)."""
    from codestill._capability import StructuredProbes
    from codestill.run._artefacts import SqliteArtefacts
    from codestill.run._checkpoints import open_checkpointer
    from codestill.traces import SqliteTracer
    from graphs import SolveDeps, build_graph
    from memory import ModuleMemory
    from tools.sandbox import DockerSandbox

    solve = settings.solve
    stack = AsyncExitStack()
    try:
        # The chat models first: a bad spec or a missing key fails before anything is opened.
        models = build_models(settings, specs, stack)
        # ... and what each endpoint honours (llm.structured=auto): an unreachable one fails here too
        structured = await (probes or StructuredProbes()).resolve(settings.llm.structured,
                                                                  ((specs[r], models[r]) for r in specs))
        tracer = None
        if settings.traces.enabled:
            tracer = SqliteTracer(settings.traces.path, redact=_secrets(settings))
            stack.callback(tracer.close)
        memory = stack.enter_context(ModuleMemory(settings.memory))
        sandbox = await stack.enter_async_context(DockerSandbox(settings.sandbox))
        solve.checkpoints.parent.mkdir(parents=True, exist_ok=True)
        checkpointer = await stack.enter_async_context(open_checkpointer(solve.checkpoints))
        artefacts = SqliteArtefacts(artefacts_path(solve.checkpoints))
        stack.callback(artefacts.close)
        deps = SolveDeps(models=models, sandbox=sandbox, memory=memory, config=solve, artefacts=artefacts,
                         model_names=dict(specs), interactive=interactive, structured=structured,
                         repair_rounds=settings.llm.repair_rounds,
                         role_max_tokens=settings.llm.role_max_tokens)
        return Session(graph=build_graph(checkpointer), deps=deps, settings=settings, tracer=tracer, stack=stack)
    except BaseException:
        await stack.aclose()
        raise
