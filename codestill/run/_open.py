"""Everything a batch runs on, opened once and shared by every input: a chat-model client per endpoint,
the Docker sandbox pool, the module memory, the run's trace store. Used by `codestill generate` and by
each Ray worker, so a worker's run is the same as a local one. With ``llm.structured=auto`` each endpoint is
asked once which structured method it honours (``codestill._capability``); ``Opened.structured`` says what
the agents use."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codestill.config import Settings
from codestill.run._rundir import RunDir
from codestill.runtime import settle_heap


@dataclass
class Opened:
    graphs: Any  # codestill.run._pipelines.Graphs
    sandbox: Any  # codestill.run._metered.MeteredSandbox
    tracer: Any = None
    structured: dict[str, str] | None = None  # the method of the solve agents ("solve") and the instruct stages


@asynccontextmanager
async def open_batch(settings: Settings, specs: Mapping[str, str], instruct_spec: str, run_dir: Path, *,
                     concurrency: int, pipeline: str) -> AsyncIterator[Opened]:
    from codestill._capability import StructuredProbes
    from codestill.run._metered import MeteredSandbox
    from codestill.run._pipelines import Graphs
    from codestill.run._session import _secrets, build_models
    from codestill.traces import SqliteTracer
    from graphs import InstructDeps, SolveDeps
    from memory import MemoryProcess, ModuleMemory
    from tools.sandbox import DockerSandbox

    async with AsyncExitStack() as stack:
        wants_instruct = pipeline != "solve"
        models = build_models(settings, specs, stack, {"instruct": instruct_spec} if wants_instruct else None)
        probes = StructuredProbes()  # each endpoint asked once, by whichever use comes first
        llm = settings.llm
        structured = {"solve": await probes.resolve(llm.structured, ((specs[r], models[r]) for r in specs))}
        if wants_instruct:
            structured["instruct"] = await probes.resolve(llm.structured, [(instruct_spec, models["instruct"])])
        tracer = None
        if settings.traces.enabled:
            tracer = SqliteTracer(RunDir(run_dir).traces_path, redact=_secrets(settings))
            stack.callback(tracer.close)
        memory = stack.enter_context(MemoryProcess(settings.memory, log=RunDir(run_dir).memory_log_path)
                                     if settings.memory.process else ModuleMemory(settings.memory))
        pool = await stack.enter_async_context(DockerSandbox(settings.sandbox))
        sandbox = MeteredSandbox(pool, capacity=settings.sandbox.pool_size)
        deps = SolveDeps(models={r: models[r] for r in specs}, sandbox=sandbox, memory=memory, config=settings.solve,
                         model_names=dict(specs), structured=structured["solve"], repair_rounds=llm.repair_rounds,
                         role_max_tokens=llm.role_max_tokens)
        instruct = (InstructDeps(model=models["instruct"], evol=settings.evol, selfalign=settings.selfalign,
                                 structured=structured["instruct"], repair_rounds=llm.repair_rounds,
                                 role_max_tokens=llm.role_max_tokens)
                    if wants_instruct else None)
        graphs = Graphs(solve=deps, instruct=instruct, gate=asyncio.Semaphore(concurrency),
                        callbacks=[tracer] if tracer is not None else [])
        try:
            yield Opened(graphs=graphs, sandbox=sandbox, tracer=tracer, structured=structured)
        finally:
            if tracer is not None:
                tracer.flush(10.0)


async def run_local(settings: Settings, specs: Mapping[str, str], instruct_spec: str, items: list[Any],
                    run_dir: Path, *, pipeline: str, concurrency: int, stop: asyncio.Event | None = None,
                    display: Any = None) -> tuple[Any, float, dict[str, float]]:
    """One process's batch over ``items`` into ``run_dir``: (the ``Outcome``, the run's wall time so far,
    this session's sandbox runs and seconds)."""
    from codestill.run._batch import run_batch
    from codestill.run._ledger import Ledger

    with Ledger(run_dir) as ledger:
        async with open_batch(settings, specs, instruct_spec, run_dir, concurrency=concurrency,
                              pipeline=pipeline) as opened:
            if display is not None:
                display.sandbox = opened.sandbox
            settle_heap()  # everything is open: from here on a full collection would stall every task
            outcome = await run_batch(items, pipeline, opened.graphs, ledger, concurrency=concurrency, stop=stop,
                                      on_start=display.start if display else None,
                                      on_done=display.done if display else None)
            sandbox = {"runs": opened.sandbox.runs, "seconds": round(opened.sandbox.seconds, 3),
                       "busy_s": round(opened.sandbox.busy_s, 3)}
        return outcome, ledger.wall_s(), sandbox
