"""``open_deps(settings, mode)``: the one place the live dependencies of a run are built.

Every entry point (a session of ``codestill solve``/``chat``, a batch of ``codestill generate`` and each of
its Ray workers, ``codestill evolve``/``instruct``, a replay, an evaluation, LangGraph Studio's server)
opens what it runs on here, so they differ only where their mode says:

    mode      models            memory                          sandbox        traces        checkpoints
    session   per role (specs)  ModuleMemory                    Docker pool    traces.path   solve.checkpoints
    studio    per role (specs)  ModuleMemory                    Docker pool    traces.path   the server's own
    batch     per role + instr  MemoryProcess (memory.process)  metered pool   run dir       none (the ledger)
    instruct  the instr model   none                            none           none          none
    replay    the recording     the recording                   Docker pool    the caller's  none
    eval      none              none                            Docker pool    none          none

(``instruct_spec`` adds the instruction stages' model to session, studio and batch too.)

The chat models come first, so a bad spec or a missing key fails before anything is opened; with
``llm.structured=auto`` each endpoint is asked once which structured method it honours. Everything
opened is closed when the context ends, also when opening fails half-way.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from codestill.config import Settings
from codestill.ports import Sandbox
from codestill.run._rundir import RunDir

if TYPE_CHECKING:
    from codestill._capability import StructuredProbes
    from codestill.traces import SqliteTracer
    from codestill.traces.replay import Recording
    from graphs import InstructDeps, SolveDeps

_SOLVES = ("session", "studio", "batch")  # the modes that run the solve graph
Mode = Literal["session", "studio", "batch", "instruct", "replay", "eval"]
__all__ = ["Deps", "Mode", "artefacts_path", "build_models", "open_deps", "secrets"]


@dataclass
class Deps:
    """What a mode runs on; a field its mode does not use is None."""

    mode: Mode
    sandbox: Sandbox | None = None
    solve: SolveDeps | None = None
    instruct: InstructDeps | None = None
    tracer: SqliteTracer | None = None
    checkpointer: Any = None  # a LangGraph saver (session mode)
    structured: dict[str, str] = field(default_factory=dict)  # the method per use: "solve", "instruct"


def secrets(settings: Settings) -> list[str]:
    """Every secret the settings and the environment hold: the trace store blanks them out."""
    keys = [settings.llm.api_key, settings.memory.api_key]
    out = [k.get_secret_value() for k in keys if k is not None and k.get_secret_value()]
    if os.environ.get("OPENAI_API_KEY"):
        out.append(os.environ["OPENAI_API_KEY"])
    return out


def artefacts_path(checkpoints: Path) -> Path:
    """The artefact store of a checkpoint file: ``sessions.sqlite`` -> ``sessions.artefacts.sqlite``."""
    return checkpoints.with_name(checkpoints.stem + ".artefacts" + (checkpoints.suffix or ".sqlite"))


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


@asynccontextmanager
async def open_deps(settings: Settings, mode: Mode, *, specs: Mapping[str, str] | None = None,
                    instruct_spec: str | None = None, run_dir: Path | None = None, interactive: bool = False,
                    probes: StructuredProbes | None = None, recording: Recording | None = None,
                    structured: str | None = None) -> AsyncIterator[Deps]:
    """Open what ``mode`` runs on (see the module docstring); closed when the context ends.

    ``specs``: the model spec per agent role (session, studio, batch); ``instruct_spec``: the model of a
    batch's instruction stage, if it has one; ``run_dir``: the batch's run directory; ``probes``: what
    earlier opens in this process found out about the endpoints; ``recording`` and ``structured``: the
    run a replay answers from and the structured method it asks with (default: the recorded one)."""
    from codestill._capability import StructuredProbes
    from graphs import InstructDeps, SolveDeps
    from tools.sandbox import DockerSandbox

    llm = settings.llm
    async with AsyncExitStack() as stack:
        models: dict[str, Any] = {}
        found: dict[str, str] = {}
        specs = dict(specs or {}) if mode in _SOLVES else {}
        if mode in _SOLVES and not specs:
            raise ValueError(f"open_deps(mode={mode!r}) needs the model spec of every agent role")
        if mode == "instruct" and not instruct_spec:
            raise ValueError("open_deps(mode='instruct') needs the instruction stages' model spec")
        if mode in (*_SOLVES, "instruct"):
            models = build_models(settings, specs, stack, {"instruct": instruct_spec} if instruct_spec else None)
            probes = probes or StructuredProbes()  # each endpoint asked once, by whichever use comes first
            if specs:
                found["solve"] = await probes.resolve(llm.structured, ((specs[r], models[r]) for r in specs))
            if instruct_spec:
                found["instruct"] = await probes.resolve(llm.structured, [(instruct_spec, models["instruct"])])
        tracer = _tracer(settings, mode, run_dir)
        if tracer is not None:
            stack.callback(tracer.close)
        memory = _memory(settings, mode, run_dir, stack)
        sandbox: Sandbox | None = None
        if mode != "instruct":
            sandbox = await stack.enter_async_context(DockerSandbox(settings.sandbox))
        if mode == "batch":
            from codestill.run._metered import MeteredSandbox

            assert sandbox is not None  # opened above: a batch solves
            sandbox = MeteredSandbox(sandbox, capacity=settings.sandbox.pool_size)
        deps = Deps(mode=mode, sandbox=sandbox, tracer=tracer, structured=found)
        common: dict[str, Any] = {"repair_rounds": llm.repair_rounds, "role_max_tokens": llm.role_max_tokens}
        if instruct_spec:
            # A batch's instruction stages take their turns under the batch's own gate; elsewhere the
            # stages fill the model's connections (llm.max_concurrency) by default.
            connections: dict[str, Any] = {} if mode == "batch" else {"llm_concurrency": llm.max_concurrency}
            deps.instruct = InstructDeps(model=models["instruct"], evol=settings.evol, selfalign=settings.selfalign,
                                         structured=found["instruct"], **common, **connections)
        if mode in _SOLVES:
            assert sandbox is not None
            extra: dict[str, Any] = {}
            if mode in ("session", "studio"):
                extra["artefacts"] = await _artefacts(settings, stack)
            if mode == "session":
                from codestill.run._checkpoints import open_checkpointer

                deps.checkpointer = await stack.enter_async_context(open_checkpointer(settings.solve.checkpoints))
            deps.solve = SolveDeps(models={r: models[r] for r in specs}, sandbox=sandbox, memory=memory,
                                   config=settings.solve, model_names=dict(specs), structured=found["solve"],
                                   interactive=interactive, **extra, **common)
        elif mode == "replay":
            assert sandbox is not None
            if recording is None:
                raise ValueError("open_deps(mode='replay') needs the recording to answer from")
            from codestill.run._replay import replay_deps

            deps.solve = replay_deps(recording, sandbox, config=settings.solve, repair_rounds=llm.repair_rounds,
                                     structured=structured)  # type: ignore[arg-type]  # checked by the CLI
        try:
            yield deps
        finally:
            if tracer is not None:
                tracer.flush(10.0)


def _tracer(settings: Settings, mode: Mode, run_dir: Path | None) -> SqliteTracer | None:
    if not settings.traces.enabled or mode in ("instruct", "replay", "eval"):  # a replay traces where its caller says
        return None
    from codestill.traces import SqliteTracer

    if mode == "batch":
        if run_dir is None:
            raise ValueError("open_deps(mode='batch') needs the run directory")
        return SqliteTracer(RunDir(run_dir).traces_path, redact=secrets(settings))
    return SqliteTracer(settings.traces.path, redact=secrets(settings))


def _memory(settings: Settings, mode: Mode, run_dir: Path | None, stack: AsyncExitStack) -> Any:
    if mode in ("instruct", "replay", "eval"):
        return None
    from memory import MemoryProcess, ModuleMemory

    if mode == "batch" and settings.memory.process:
        log = RunDir(run_dir).memory_log_path if run_dir is not None else None
        return stack.enter_context(MemoryProcess(settings.memory, log=log))
    return stack.enter_context(ModuleMemory(settings.memory))


async def _artefacts(settings: Settings, stack: AsyncExitStack) -> Any:
    """A session's artefacts live in SQLite beside its checkpoints, so a resumed thread finds them."""
    from codestill.run._artefacts import SqliteArtefacts

    checkpoints = settings.solve.checkpoints
    checkpoints.parent.mkdir(parents=True, exist_ok=True)
    artefacts = SqliteArtefacts(artefacts_path(checkpoints))
    stack.callback(artefacts.close)
    return artefacts
