"""LangGraph Studio and ``langgraph dev``: the three graphs, run with codestill's live dependencies.

``langgraph.json`` points the LangGraph API server at the factories here (``solve``, ``evol``,
``selfalign``) and mounts ``app``, whose lifespan closes what the runs opened when the server stops.

The graphs take their dependencies (a chat model per role, the Docker sandbox pool, the module memory,
the artefact store) as LangGraph's runtime context, but the server can only give a run a JSON
``context`` (it builds ``SolveDeps(**context)``, which fails). So each factory returns the graph
compiled without a checkpointer (the server brings its own and its store) as a ``StudioGraph``: the
same nodes and edges, whose ``astream``, the one call every way the server runs a graph goes through,
puts the live dependencies in place of the run's JSON context. That JSON is read as the graph's
``context_schema`` here (``SolveOptions``), which is also the form Studio shows. Nothing live is ever
passed by a user.

What a run says, all plain JSON (``langgraph_sdk``: ``client.runs.wait(thread, "solve", input=...,
context=...)``; Studio: the input and "context" forms):

    solve      input {"task": <a Task as JSON> | "<the instruction>"}
               context {"interactive": true | false}: true (the default) pauses after planning and
               before accepting, as ``codestill solve --interactive``; resume with
               Command(resume={"action": "accept"}) | {"action": "edit", "plans": [...]} |
               {"action": "regenerate", "feedback": "..."} | {"action": "reject", "reason": "..."},
               the answers of ``review_plans`` and ``confirm`` in ``graphs/solve.py``
    evol       input {"task": <Task> | "<instruction>", "round": 1, "last_round": 3} (round defaults to 1)
    selfalign  input {"seed": <a Seed as JSON>}

Settings come from ``load_settings()`` in the server's working directory (./codestill.toml, then
``CODESTILL_*``; langgraph.json's "env" may name a .env file), read on the first run, not at import:
a server whose model is down still starts and shows the graphs. The solve graph runs on what
``open_deps(settings, "studio")`` opens (what ``codestill solve`` runs on, less the checkpointer: models
per ``solve.models``/``llm.model``, traces in ``traces.path``, memory, sandbox pool, artefacts beside
``solve.checkpoints``); evol and selfalign on ``open_deps(settings, "instruct")``: ``llm.model`` alone.

The one piece of process state, and why: the server calls a factory for every run and every read, and
neither LangGraph nor the API server has a place to keep objects between runs; the Docker pool and the
model clients must outlive a run (opening them takes seconds, and a pool per run would leave
containers behind). ``live()`` (``functools.cache``: one ``Live`` per process) holds them, opened
lazily by the first run that needs them, on the server's event loop, and ``lifespan`` closes them when
the server stops or reloads (``"http": {"app": "codestill.run.studio:app"}`` in langgraph.json).
"""

from __future__ import annotations

import asyncio
import functools
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING, Any, ClassVar

from langchain_core.runnables import RunnableConfig
from langchain_core.runnables.config import merge_configs
from langgraph.graph.state import CompiledStateGraph
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.applications import Starlette

from codestill.config import Settings, load_settings
from codestill.errors import CodestillError, ConfigError, SessionError, first_problem
from codestill.schemas import Seed, Task

if TYPE_CHECKING:
    from codestill._capability import StructuredProbes
    from codestill.run._deps import Deps
    from graphs import InstructDeps

__all__ = ["EvolInput", "Live", "RunError", "SelfAlignInput", "SolveInput", "SolveOptions", "StudioGraph", "app", "evol", "lifespan",
           "live", "selfalign", "solve"]


@dataclass(frozen=True)
class SolveOptions:
    """A solve run's context, as JSON: ``interactive`` pauses the run for a person after planning and
    before accepting (LangGraph interrupts; resume with ``Command(resume=...)``)."""

    interactive: bool = True


@dataclass
class Prepared:
    """What a run starts from once its JSON is replaced: the input, the live context, the config, and
    what to do when it ends (flush the trace store)."""

    input: Any
    context: Any
    config: RunnableConfig
    done: Callable[[], Awaitable[None]] | None = None


Prepare = Callable[[Any, Any, RunnableConfig | None], Awaitable[Prepared]]


class RunError(ValueError):
    """A codestill error as the API server passes it on to Studio and the SDK: the server shows the
    message of a few builtin kinds only (ValueError among them) and "An internal error occurred" for any
    other, which would hide what to fix (a bad setting, an unreachable model server)."""


class StudioGraph(CompiledStateGraph):
    """A compiled graph whose runs get their runtime context from ``prepare`` instead of the caller.

    Subclassed once per graph (``_bind``) so that ``prepare`` and ``input_model`` are class attributes:
    the server copies the graph for every run (``Pregel.copy`` rebuilds it from its ``__dict__``) and
    the copy keeps them. ``input_model`` is also the input form Studio shows (the state's own schema
    cannot be written as JSON schema), and the output is any object."""

    prepare: ClassVar[Prepare]
    input_model: ClassVar[type[BaseModel]]

    async def astream(self, input: Any, config: RunnableConfig | None = None, *, context: Any = None,
                      **kwargs: Any) -> AsyncIterator[Any]:  # type: ignore[override]
        try:
            _blocking_allowed()
            run = await type(self).prepare(input, context, config)
            try:
                async for part in super().astream(run.input, run.config, context=run.context, **kwargs):
                    yield part
            finally:
                if run.done is not None:
                    await run.done()
        except CodestillError as e:
            raise RunError(f"{type(e).__name__}: {e}") from e

    def get_input_jsonschema(self, config: RunnableConfig | None = None) -> dict[str, Any]:
        return type(self).input_model.model_json_schema()

    def get_output_jsonschema(self, config: RunnableConfig | None = None) -> dict[str, Any]:
        return {"title": f"{self.name} state", "type": "object"}


def _blocking_allowed() -> None:
    """``langgraph dev`` fails every synchronous call made on its event loop (blockbuster) unless it was
    started with --allow-blocking, and codestill's stores make short ones there, as in ``codestill
    solve``: SQLite (artefacts, traces), the embedded Chroma memory, opening the sandbox pool. Say so
    before anything is opened, instead of a BlockingError from inside the first store.
    ``LANGGRAPH_ALLOW_BLOCKING`` is what `langgraph dev` sets from its flag."""
    if os.environ.get("LANGGRAPH_ALLOW_BLOCKING", "").lower() == "false":
        raise ConfigError("codestill's graphs make short synchronous calls (SQLite, the Chroma memory, Docker) "
                          "that `langgraph dev` refuses by default; start it with `langgraph dev --allow-blocking`")


def _bind(name: str, graph: Any, prepare: Prepare, options: type | None, input_model: type[BaseModel]) -> StudioGraph:
    """``graph`` (compiled, no checkpointer) as a ``StudioGraph`` named ``name`` whose JSON context is
    ``options``."""
    cls = type(f"Studio{name.capitalize()}Graph", (StudioGraph,),
               {"prepare": staticmethod(prepare), "input_model": input_model})
    attrs = {k: v for k, v in graph.__dict__.items() if k != "__orig_class__"}
    return cls(**{**attrs, "context_schema": options, "name": name})


class Live:
    """The dependencies of one server process: opened on first use, on the server's event loop, closed
    by ``aclose`` (``lifespan``). ``load`` reads the settings (``load_settings``: ./codestill.toml and
    ``CODESTILL_*``)."""

    def __init__(self, load: Callable[[], Settings] = load_settings) -> None:
        self._load = load
        self._lock = asyncio.Lock()
        self._stack = AsyncExitStack()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._settings: Settings | None = None
        self._probes: StructuredProbes | None = None
        self._solve: Deps | None = None
        self._instruct: Deps | None = None

    def _settled(self) -> Settings:
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
        elif self._loop is not loop:
            raise SessionError("the studio's dependencies belong to the event loop that opened them; run "
                               "`langgraph dev` without BG_JOB_ISOLATED_LOOPS")
        if self._settings is None:
            from codestill._capability import StructuredProbes

            self._settings = self._load()
            self._probes = StructuredProbes()
        return self._settings

    async def solve(self) -> Deps:
        """``open_deps``'s studio mode: what ``codestill solve`` opens (a model per role, traces, memory,
        sandbox pool, artefacts) less the checkpointer, since the server keeps the threads."""
        async with self._lock:
            settings = self._settled()
            if self._solve is None:
                from codestill.run._deps import open_deps
                from codestill.run._session import model_specs

                self._solve = await self._stack.enter_async_context(open_deps(
                    settings, "studio", specs=model_specs(settings, None, {}), interactive=True, probes=self._probes))
            return self._solve

    async def instruct(self) -> InstructDeps:
        """``open_deps``'s instruct mode: ``llm.model`` and the evol / selfalign settings (no sandbox)."""
        async with self._lock:
            settings = self._settled()
            if self._instruct is None:
                from codestill.run._deps import open_deps

                self._instruct = await self._stack.enter_async_context(open_deps(
                    settings, "instruct", instruct_spec=settings.llm.model, probes=self._probes))
            assert self._instruct.instruct is not None
            return self._instruct.instruct

    async def aclose(self) -> None:
        """Close everything opened (the sandbox pool removes its containers); a later run opens anew."""
        async with self._lock:
            try:
                await self._stack.aclose()
            finally:
                self._stack = AsyncExitStack()
                self._loop = self._settings = self._probes = self._solve = self._instruct = None


@functools.cache
def live() -> Live:
    """This process's ``Live`` (see the module's docstring for why there is one)."""
    return Live()


@asynccontextmanager
async def lifespan(_app: Starlette) -> AsyncIterator[None]:
    """Close the live dependencies when the server stops (or reloads)."""
    try:
        yield
    finally:
        await live().aclose()


app = Starlette(lifespan=lifespan)  # no routes: mounted by langgraph.json for its lifespan


# --- what a run's JSON becomes ---------------------------------------------------------------

class SolveInput(BaseModel):
    """The solve graph's input, as Studio's form shows it."""

    model_config = ConfigDict(extra="forbid")

    task: Task | str = Field(description="A Task as JSON, or the instruction alone (as `codestill solve`).")


class EvolInput(BaseModel):
    """The evol graph's input: one lineage, evolved from ``round`` to ``last_round``."""

    model_config = ConfigDict(extra="forbid")

    task: Task | str = Field(description="The instruction to evolve: a Task as JSON, or its text.")
    round: int = Field(default=1, ge=1, description="The round of the first evolution (1: the task is an original).")
    last_round: int | None = Field(default=None, ge=1, description="Evolve until this round; unset: one evolution.")


class SelfAlignInput(BaseModel):
    """The selfalign graph's input: one seed function."""

    model_config = ConfigDict(extra="forbid")

    seed: Seed


def _read(schema: type[BaseModel], input: Any) -> BaseModel | None:
    """A run's input as ``schema``; None for a resume (a ``Command``) or no input."""
    if input is None or not isinstance(input, Mapping):
        return None
    try:
        return schema.model_validate(dict(input))
    except ValidationError as e:
        where, msg = first_problem(e)
        keys = ", ".join(f'"{k}": ...' for k in schema.model_fields)
        raise ConfigError(f"the run's input: {where}: {msg}; give {{{keys}}} (codestill/run/studio.py)") from None


def _task(value: Task | str) -> Task:
    """A Task as given, or the task of an instruction alone (its id as ``codestill solve`` makes it)."""
    from codestill.run._session import task_id

    if isinstance(value, Task):
        return value
    if not value.strip():
        raise ConfigError('the run\'s input: "task" is empty; give the instruction or a Task as JSON')
    return Task(id=task_id(value.strip()), instruction=value.strip())


def _options(schema: type, context: Any) -> Any:
    """``schema`` from the run's JSON context, ignoring what it does not name (the server mirrors the
    run's configurable into the context: thread id, assistant id, ...)."""
    if isinstance(context, schema):
        return context
    given = context if isinstance(context, Mapping) else {}
    return schema(**{f.name: given[f.name] for f in fields(schema) if f.name in given})


def _config(config: RunnableConfig | None, steps: int, tracer: Any = None,
            task: Task | None = None) -> RunnableConfig:
    """The run's config with room for ``steps`` super-steps, the trace store and the task id."""
    out: dict[str, Any] = dict(config or {})
    if int(out.get("recursion_limit") or 0) < steps:
        out["recursion_limit"] = steps  # so a budget, never LangGraph, ends a task (graphs.recursion_limit)
    extra: dict[str, Any] = {}
    if tracer is not None:
        extra["callbacks"] = [tracer]
    if task is not None:
        extra["metadata"] = {"task_id": task.id}
    return merge_configs(out, extra) if extra else out  # type: ignore[arg-type]


async def _prepare_solve(input: Any, context: Any, config: RunnableConfig | None) -> Prepared:
    from graphs import recursion_limit

    opened = await live().solve()
    assert opened.solve is not None
    deps = replace(opened.solve, interactive=_options(SolveOptions, context).interactive)
    task = None
    if (given := _read(SolveInput, input)) is not None:
        task = _task(given.task)  # type: ignore[attr-defined]
        input = {"task": task}
    tracer = opened.tracer

    async def done() -> None:
        if tracer is not None:  # what this run traced is in the store when the run's answer comes
            await asyncio.to_thread(tracer.flush, 5.0)

    return Prepared(input, deps, _config(config, recursion_limit(deps), tracer, task), done)


async def _prepare_evol(input: Any, context: Any, config: RunnableConfig | None) -> Prepared:
    deps = await live().instruct()
    steps = 8
    if (given := _read(EvolInput, input)) is not None:
        assert isinstance(given, EvolInput)
        input = {"task": _task(given.task), "round": given.round}
        if given.last_round is not None:
            input["last_round"] = given.last_round
        steps += 2 * max(1, (given.last_round or given.round) - given.round + 1)  # evolve + judge per round
    return Prepared(input, deps, _config(config, steps))


async def _prepare_selfalign(input: Any, context: Any, config: RunnableConfig | None) -> Prepared:
    deps = await live().instruct()
    if (given := _read(SelfAlignInput, input)) is not None:
        input = {"seed": given.seed}  # type: ignore[attr-defined]
    return Prepared(input, deps, _config(config, 8))


# --- the factories langgraph.json names -----------------------------------------------------

@functools.cache
def solve() -> StudioGraph:
    """The solve graph with its two pauses for a person (``review_plans``, ``confirm``)."""
    from graphs import build_graph

    return _bind("solve", build_graph(reviews=True), _prepare_solve, SolveOptions, SolveInput)


@functools.cache
def evol() -> StudioGraph:
    """Code Evol-Instruct: one lineage, from ``round`` to ``last_round``."""
    from graphs.evol import build_graph

    return _bind("evol", build_graph(), _prepare_evol, None, EvolInput)


@functools.cache
def selfalign() -> StudioGraph:
    """SelfCodeAlign: one seed function in, instructions out."""
    from graphs.selfalign import build_graph

    return _bind("selfalign", build_graph(), _prepare_selfalign, None, SelfAlignInput)
