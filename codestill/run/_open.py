"""Everything a batch runs on (``open_deps(settings, "batch")``), opened once and shared by every input: a chat-model client per endpoint,
the Docker sandbox pool, the module memory, the run's trace store. Used by `codestill generate` and by
each Ray worker, so a worker's run is the same as a local one. With ``llm.structured=auto`` each endpoint is
asked once which structured method it honours (``codestill._capability``); ``Opened.structured`` says what
the agents use."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codestill.config import Settings
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
    from codestill.run._deps import open_deps
    from codestill.run._pipelines import Graphs

    async with open_deps(settings, "batch", specs=specs, instruct_spec=instruct_spec if pipeline != "solve" else None,
                         run_dir=run_dir) as deps:
        assert deps.solve is not None
        graphs = Graphs(solve=deps.solve, instruct=deps.instruct, gate=asyncio.Semaphore(concurrency),
                        callbacks=[deps.tracer] if deps.tracer is not None else [])
        yield Opened(graphs=graphs, sandbox=deps.sandbox, tracer=deps.tracer, structured=deps.structured)


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
