"""Solve-graph overhead: framework time per task (graph, tracing, checkpointing, memory retrieval) as a
share of the time spent waiting on the model, with the simulated teacher at latency 0 and 0.2 s.

Starts ``codestill sim`` (no planted bugs, no faults) and solves 100 MBPP problems at concurrency 32
through ``graphs.solve`` with everything a batch run has: the batch graph (``build_graph(reviews=False)``:
no steps that wait for a person), the SQLite trace store as a callback, a SQLite checkpointer in the
batch mode (durability "exit": one checkpoint per task, at its end, and none inside its branches;
sessions keep them, see ``build_graph``), an embedded Chroma memory served from its own process
(``MemoryProcess``, as ``codestill generate`` does), the Docker sandbox, and the start-up heap frozen
out of the garbage collector's full passes (``codestill.runtime.settle_heap``, as there). The sim works
out its tester's extra tests before the clock starts (``warm_tester``, kept in ``--sim-cache``): a real
teacher does that on its own machine, not on the cores of the runner being measured.
Per task, three clocks:

- wall: the task's ``solve()`` call, start to end;
- LLM: the sum of its model calls' latencies (``Trajectory.usage.latency_s``, measured around each call);
- sandbox: the sum of its sandbox runs (a timing wrapper around the ``Sandbox`` interface).

framework = wall - LLM - sandbox; ``overhead_share = sum(framework) / sum(LLM)`` at latency 0.2 s.
Within a task (one plan) calls and runs are sequential, so the three do not overlap, with one
exception: the memory commit runs beside the backward plan's model call, so only what it takes
beyond that call counts (the table shows its own time apart). At concurrency 32
on one event loop most of a task's framework time is waiting for its turn while other tasks' code
runs, so the same second of loop time is counted once in every task that waits through it: the
measure shows contention for the 2 cores (this process, the memory process, the sim, Docker) as much
as the framework's own work. The table therefore also shows the framework's CPU time: all the CPU
time the runner's processes spent from the first task's start to the last one's end (this process,
every thread: the graph, the trace store's writer, the checkpointer, and the LLM and sandbox
clients' own work, not subtracted; and the memory's child process), over the same LLM time. Not
counted there: the simulated teacher (a real one runs elsewhere) and the sandbox's containers.

A third run, at 0.2 s and a lower concurrency (``--low-concurrency``, 8), comes before the headline
one: the same tasks with less of the loop's waiting, which tells the framework's own cost apart
from contention. The table also shows the slowest task's wall time: one task that times out in the
sandbox through every repair holds ``tasks/s`` down on its own (on a slow machine, MBPP 123's reference
solution needs more than the sandbox's 4 s of CPU for the sim tester's tests).

``wrong_accepted`` counts accepted solutions that fail the hidden reference tests (MBPP+'s base and
plus inputs, EvalPlus protocol), which no agent saw. The problems are the first 100 of MBPP+ whose MBPP
reference solution passes MBPP+ (the sim answers with it; 16 % of MBPP's references do not).

    .venv/bin/python bench/solve_overhead.py [--n 100] [--concurrency 32] [--low-concurrency 8]
                                             [--truth-cache DIR] [--sim-cache DIR]

Target on the 2-core machine: overhead_share <= 0.05 at 0.2 s latency, wrong_accepted = 0. Last line:

    solve: tasks_per_s=<float> overhead_share=<float> accepted=<int> wrong_accepted=<int>
"""

from __future__ import annotations

import argparse
import asyncio
import contextvars
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
from _progress import progress_bar
from pydantic import SecretStr
from rich.console import Console
from rich.table import Table

from codestill.config import LLMConfig, MemoryConfig, SandboxConfig
from codestill.data import load_mbpp
from codestill.llm import aclose, make_chat_model
from codestill.run._checkpoints import open_checkpointer
from codestill.runtime import prefer_passive_openmp, settle_heap
from codestill.schemas import ExecResult, Limits, MemoryHit, Module, ModuleSpec, TestSuite, Trajectory
from codestill.sim import SimConfig, serve_subprocess, warm_tester
from codestill.traces import SqliteTracer
from graphs import AGENT_ROLES, SolveDeps, build_graph, solve
from memory import AddResult, Memory, MemoryProcess
from tools.sandbox import DockerSandbox, Sandbox
from training._bench import load_problems
from training.evaluate import judge

console = Console(stderr=True, width=160)
# The problem a coroutine works for: a context variable follows it into LangGraph's node tasks.
_owner: contextvars.ContextVar[str] = contextvars.ContextVar("owner", default="?")


@dataclass
class TimedSandbox:
    """The ``Sandbox`` interface, adding each run's wall time to the task that asked for it."""

    inner: Sandbox
    seconds: dict[str, float] = field(default_factory=dict)

    async def run(self, program: str | bytes, tests: TestSuite | str, limits: Limits | None = None) -> ExecResult:
        start = time.perf_counter()
        try:
            return await self.inner.run(program, tests, limits)
        finally:
            owner = _owner.get()
            self.seconds[owner] = self.seconds.get(owner, 0.0) + time.perf_counter() - start


@dataclass
class TimedMemory:
    """The ``Memory`` interface, adding each call's wall time (queueing included) to its task: searches
    (retrieval, on the task's path) apart from adds and reuse marks (the commit, beside the backward plan)."""

    inner: Memory
    search_s: dict[str, float] = field(default_factory=dict)
    commit_s: dict[str, float] = field(default_factory=dict)

    async def _timed(self, call: Any, into: dict[str, float]) -> Any:
        start = time.perf_counter()
        try:
            return await call
        finally:
            owner = _owner.get()
            into[owner] = into.get(owner, 0.0) + time.perf_counter() - start

    async def asearch(self, spec: ModuleSpec, k: int = 5, min_score: float | None = None,
                      count: bool = True) -> list[MemoryHit]:
        return await self._timed(self.inner.asearch(spec, k, min_score, count), self.search_s)

    async def aadd(self, module: Module) -> AddResult:
        return await self._timed(self.inner.aadd(module), self.commit_s)

    async def amark_reused(self, ids: list[str]) -> None:
        await self._timed(self.inner.amark_reused(ids), self.commit_s)


def _cpu_s(processes: list[psutil.Process]) -> float:
    """User and system CPU seconds the processes have used so far."""
    return sum(t.user + t.system for t in (p.cpu_times() for p in processes))


async def pick_problems(n: int, sandbox: Sandbox, cache: Path) -> list:
    bank = {p.id.rsplit("/", 1)[-1]: p for p in load_mbpp()}
    numbers = [p.id.rsplit("/", 1)[-1] for p in load_problems("mbpp+") if p.id.rsplit("/", 1)[-1] in bank]
    judged = await judge("mbpp+", {i: bank[i].reference for i in numbers[: n * 2]}, sandbox, cache)
    good = [i for i in numbers[: n * 2] if (r := judged.get(f"mbpp/{i}")) is not None and r.passed]
    return [bank[i] for i in good[:n]]


async def one_run(problems: list, latency: float, concurrency: int, tmp: Path, sandbox: Sandbox,
                  cache: Path, sim_cache: Path) -> dict:
    timed = TimedSandbox(sandbox)
    name = f"{latency}-{concurrency}"
    with serve_subprocess(SimConfig(seed=1, latency_s=latency, cache_dir=str(sim_cache))) as url, \
            MemoryProcess(MemoryConfig(path=tmp / f"memory-{name}")) as store:
        memory = TimedMemory(store)
        spec = f"openai:codestill-sim@{url}"
        model = make_chat_model(spec, LLMConfig(api_key=SecretStr("sk-bench"), max_concurrency=64))
        tracer = SqliteTracer(tmp / f"traces-{name}.sqlite", redact=["sk-bench"])
        try:
            async with open_checkpointer(tmp / f"checkpoints-{name}.sqlite") as saver:
                graph = build_graph(saver, branch_checkpoints=False, reviews=False)
                deps = SolveDeps(models={r: model for r in AGENT_ROLES}, sandbox=timed, memory=memory,
                                 model_names={r: spec for r in AGENT_ROLES})
                gate = asyncio.Semaphore(concurrency)
                ours = [psutil.Process(), psutil.Process(store.pid)]
                cpu: list[float] = []
                walls: dict[str, float] = {}
                out: list[Trajectory] = []
                with progress_bar(console, "tasks") as bar:
                    task = bar.add_task(f"latency {latency} s, concurrency {concurrency}", total=len(problems))

                    async def go(p) -> None:
                        async with gate:
                            _owner.set(p.id)
                            start = time.perf_counter()
                            t = await solve(p.to_task(), deps, graph=graph, callbacks=[tracer], durability="exit")
                            walls[p.id] = time.perf_counter() - start
                            out.append(t)
                            bar.advance(task)

                    settle_heap()  # as codestill generate does once its batch is open
                    cpu.append(_cpu_s(ours))
                    start = time.perf_counter()
                    await asyncio.gather(*(go(p) for p in problems))
                    elapsed = time.perf_counter() - start
                    cpu.append(_cpu_s(ours))
                accepted = {t.task.id: t.final_code for t in out if t.verdict == "accepted" and t.final_code}
                judged = await judge("mbpp+", accepted, sandbox, cache)
        finally:
            tracer.close()
            await aclose(model)
    llm = sum(t.usage.latency_s for t in out)
    box = sum(timed.seconds.get(t.task.id, 0.0) for t in out)
    mem = sum(memory.search_s.get(t.task.id, 0.0) for t in out)
    commit = sum(memory.commit_s.get(t.task.id, 0.0) for t in out)
    wall = sum(walls.values())
    framework_cpu = cpu[1] - cpu[0]
    return {"latency": latency, "concurrency": concurrency, "slowest_s": max(walls.values(), default=0.0),
            "tasks_per_s": len(problems) / elapsed, "llm_s": llm, "sandbox_s": box,
            "memory_s": mem, "commit_s": commit, "cpu_s": framework_cpu, "cpu_share": framework_cpu / llm if llm else float("nan"),
            "framework_s": wall - llm - box, "share": (wall - llm - box) / llm if llm else float("nan"),
            "accepted": len(accepted), "wrong": sum(1 for r in judged.values() if r is not None and not r.passed)}


async def main_async(args: argparse.Namespace) -> list[dict]:
    with tempfile.TemporaryDirectory(prefix="codestill-solve-bench-") as d:
        async with DockerSandbox(SandboxConfig()) as sandbox:
            problems = await pick_problems(args.n, sandbox, args.truth_cache)
            console.print(f"{len(problems)} MBPP problems whose reference passes MBPP+; the sim works out "
                          f"its tester's tests for them (kept in {args.sim_cache})")
            await asyncio.to_thread(warm_tester, SimConfig(seed=1, cache_dir=str(args.sim_cache)),
                                    [p.id for p in problems])
            # The headline run (latency, concurrency) last; before it the same latency at a lower
            # concurrency, which shows the framework's own cost apart from the waiting a full loop adds.
            plan = [(0.0, args.concurrency), (args.latency, args.low_concurrency), (args.latency, args.concurrency)]
            return [await one_run(problems, latency, concurrency, Path(d), sandbox, args.truth_cache, args.sim_cache)
                    for latency, concurrency in plan if concurrency > 0]


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--latency", type=float, default=0.2)
    ap.add_argument("--low-concurrency", type=int, default=8,
                    help="also run the latency at this concurrency, before the headline run (0: skip)")
    ap.add_argument("--truth-cache", type=Path, default=Path(".codestill/bench-truth"))
    ap.add_argument("--sim-cache", type=Path, default=Path(".codestill/bench-sim-cache"))
    args = ap.parse_args()
    prefer_passive_openmp()
    runs = asyncio.run(main_async(args))
    table = Table(title=f"solve graph: {args.n} tasks")
    for col in ("latency s", "in flight", "tasks/s", "slowest task s", "LLM s", "sandbox s", "framework s",
                "of it retrieval s", "framework / LLM", "memory commit s (beside backward)", "framework CPU s",
                "framework CPU / LLM", "accepted", "wrong"):
        table.add_column(col, justify="right")
    for r in runs:
        table.add_row(f"{r['latency']:.1f}", str(r["concurrency"]), f"{r['tasks_per_s']:.2f}", f"{r['slowest_s']:.1f}",
                      f"{r['llm_s']:.1f}", f"{r['sandbox_s']:.1f}", f"{r['framework_s']:.1f}", f"{r['memory_s']:.1f}",
                      f"{r['share']:.3f}", f"{r['commit_s']:.1f}", f"{r['cpu_s']:.1f}", f"{r['cpu_share']:.3f}",
                      str(r["accepted"]), str(r["wrong"]))
    console.print(table)
    last = runs[-1]
    print(f"solve: tasks_per_s={last['tasks_per_s']:.2f} overhead_share={last['share']:.3f} "
          f"accepted={last['accepted']} wrong_accepted={last['wrong']}")


if __name__ == "__main__":
    main()
