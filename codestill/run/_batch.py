"""Run a pipeline over a file of inputs, concurrently, exactly once per input, resumable.

    run_batch(items, pipeline, graphs, ledger, concurrency=64, stop=event, on_done=callback)

Inputs already in the ledger are skipped (that is what resuming is). At most ``concurrency`` inputs are
in flight; each graph run inside them also takes a slot of ``graphs.gate``, LLM calls are bounded by the
chat-model client (``llm.max_concurrency``) and sandbox runs by the pool (``sandbox.pool_size``), all
shared by every input. A finished input is committed to the ledger with its trajectories at once
(``codestill.run._ledger``), so nothing finished is lost when the process dies.

Setting ``stop`` stops taking new inputs; those in flight finish and are committed. Cancelling the task
running ``run_batch`` (a second Ctrl-C) drops them instead; they are done again on resume.

Failures are sorted: a task the agents could not solve is a trajectory like any other; a bug that
crashed one input's graph is recorded as that input's failed trajectory; a broken dependency (the model
server unreachable after the client's retries, no Docker engine, the memory gone) would fail every
input alike, so it stops the batch (``Outcome.fatal``) and leaves those inputs for the resume.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from codestill.errors import LLMError, MemoryStoreError, SandboxError
from codestill.run._ledger import Entry, Ledger
from codestill.run._pipelines import PIPELINES, Graphs, Work, failed, input_kind, runner
from codestill.schemas import Seed, Task, Trajectory

FATAL: tuple[type[BaseException], ...] = (LLMError, SandboxError, MemoryStoreError)


@dataclass
class Outcome:
    """How a ``run_batch`` call ended: inputs committed now, those skipped as already done, and the
    error that stopped it (None when it ran out of inputs or was asked to stop)."""

    committed: int = 0
    skipped: int = 0
    fatal: BaseException | None = None
    stopped: bool = False


def verdict_of(work: Work) -> str:
    """One word for an input's outcome: its best trajectory's verdict, or why it has none."""
    verdicts = {t.verdict for t in work.trajectories}
    for v in ("accepted", "rejected", "failed"):
        if v in verdicts:
            return v
    return "no_instruction" if "no_instruction" in work.detail else "empty"


async def _do(item: Task | Seed, pipeline: str, graphs: Graphs) -> Work:
    try:
        return await runner(pipeline)(graphs, item)
    except FATAL:
        raise
    except Exception as e:  # a bug in a graph or an agent: one failed input, not a dead batch
        if isinstance(item, Task):
            return Work([failed(item, e, graphs.solve.model_label())], {"instructions": 1, "error": repr(e)[:500]})
        return Work([], {"instructions": 0, "error": repr(e)[:500]})


async def run_batch(items: Sequence[Task | Seed], pipeline: str, graphs: Graphs, ledger: Ledger, *,
                    concurrency: int, stop: asyncio.Event | None = None,
                    on_start: Callable[[str], None] | None = None,
                    on_done: Callable[[Entry, list[Trajectory]], None] | None = None) -> Outcome:
    """Run ``pipeline`` over every item not yet in ``ledger``; see the module docstring."""
    if pipeline not in PIPELINES:
        raise ValueError(f"unknown pipeline {pipeline!r}; one of {', '.join(PIPELINES)}")
    kind = input_kind(pipeline)
    if any((kind == "seed") != isinstance(i, Seed) for i in items):
        raise TypeError(f"pipeline {pipeline} takes {kind} inputs")
    stop = stop or asyncio.Event()
    done = ledger.done()
    todo = [i for i in items if i.id not in done]
    out = Outcome(skipped=len(items) - len(todo))
    slots = asyncio.Semaphore(concurrency)
    tasks: set[asyncio.Task[None]] = set()

    async def one(item: Task | Seed) -> None:
        try:
            work = await _do(item, pipeline, graphs)
        except FATAL as e:
            if out.fatal is None:
                out.fatal = e
            stop.set()
            return
        finally:
            slots.release()
        entry = ledger.commit(item.id, verdict_of(work), work.trajectories, work.detail)
        out.committed += 1
        if on_done is not None:
            on_done(entry, work.trajectories)

    try:
        for item in todo:
            await slots.acquire()
            if stop.is_set():
                slots.release()
                break
            if on_start is not None:
                on_start(item.id)
            task = asyncio.create_task(one(item), name=f"input {item.id}")
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        if tasks:
            await asyncio.gather(*tasks)
    except asyncio.CancelledError:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
    out.stopped = stop.is_set() and out.fatal is None
    return out
