"""LLM-call overhead: chat calls per second through ``make_chat_model`` with tracing on, against the
ideal bound of a server that answers in exactly ``latency`` seconds.

Starts ``codestill sim`` in its own process (``--latency 0.2``, no token pacing, no faults, no
bugs) and sends N=500 chat calls (the coder's request for 500 different bank problems) at
concurrency 64 through ``codestill.llm.make_chat_model`` with the SQLite trace store attached as
a LangChain callback. The ideal bound is N * latency / 64 seconds: nothing but the server's
latency, perfectly overlapped. ``efficiency = calls_per_s / ideal_calls_per_s``.

One untimed warm-up round of 64 calls opens the 64 connections first (connection set-up is not
what this measures). The same calls without tracing are measured too, side by side, so the
tracer's own cost is visible. Every call must succeed and the store must hold one LLM span per
call, or the benchmark fails.

    .venv/bin/python bench/llm_overhead.py [--n 500] [--concurrency 64] [--latency 0.2]

Target on the 2-core machine: efficiency >= 0.85. The last line printed is::

    llm: calls_per_s=<float> ideal_calls_per_s=<float> efficiency=<float>
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from _progress import progress_bar
from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage
from rich.console import Console
from rich.table import Table

from codestill.config import LLMConfig
from codestill.data import load_bank
from codestill.llm import aclose, make_chat_model
from codestill.sim import SimConfig, serve_subprocess
from codestill.traces import SqliteTracer, TraceStore

TARGET = 0.85
console = Console()


def prompts(n: int) -> list[list[BaseMessage]]:
    bank = load_bank()
    return [[SystemMessage("You are the codestill coder. Write a correct Python solution."),
              HumanMessage(bank[i % len(bank)].instruction)] for i in range(n)]


async def run_calls(model, calls: list[list[BaseMessage]], concurrency: int, label: str,
                    tracer: SqliteTracer | None) -> float:
    gate = asyncio.Semaphore(concurrency)
    config = {"callbacks": [tracer]} if tracer else {}
    failures: list[BaseException] = []
    with progress_bar(console, "calls") as progress:
        bar = progress.add_task(label, total=len(calls))

        async def one(messages: list[BaseMessage]) -> None:
            async with gate:
                try:
                    await model.ainvoke(messages, config=config)
                except Exception as e:
                    failures.append(e)
            progress.advance(bar)

        start = time.perf_counter()
        await asyncio.gather(*(one(m) for m in calls))
        elapsed = time.perf_counter() - start
    if failures:
        raise SystemExit(f"{len(failures)} calls failed, e.g. {failures[0]!r}")
    return elapsed


async def bench(n: int, concurrency: int, latency: float, store: Path) -> tuple[float, float]:
    with serve_subprocess(SimConfig(latency_s=latency, seed=0)) as url:
        model = make_chat_model(f"openai:codestill-sim@{url}",
                                LLMConfig(max_concurrency=concurrency, timeout_s=30, max_retries=2))
        calls = prompts(n)
        await run_calls(model, calls[:concurrency], concurrency, "warm-up", None)
        plain_s = await run_calls(model, calls, concurrency, "no tracing", None)
        with SqliteTracer(store) as tracer:
            traced_s = await run_calls(model, calls, concurrency, "tracing", tracer)
        await aclose(model)
    spans = sum(r.llm_calls for r in TraceStore(store).list_runs(limit=n + 10))
    if spans != n:
        raise SystemExit(f"the trace store holds {spans} LLM spans for {n} calls")
    ideal_s = n * latency / concurrency
    table = Table(title=f"{n} chat calls, concurrency {concurrency}, server latency {latency:g} s")
    for col in ("run", "elapsed s", "calls/s", "efficiency"):
        table.add_column(col, justify="right" if col != "run" else "left")
    for name, secs in (("ideal bound", ideal_s), ("no tracing", plain_s), ("tracing", traced_s)):
        table.add_row(name, f"{secs:.3f}", f"{n / secs:.1f}", f"{ideal_s / secs:.3f}")
    console.print(table)
    console.print(f"trace store: {spans} LLM spans for {n} calls")
    return n / traced_s, n / ideal_s


def main() -> None:
    parser = argparse.ArgumentParser(description="Chat-call throughput vs the latency-bound ideal.")
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--latency", type=float, default=0.2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rate, ideal = asyncio.run(bench(args.n, args.concurrency, args.latency, Path(tmp) / "traces.sqlite"))
    efficiency = rate / ideal
    console.print(f"target (2-core): efficiency >= {TARGET}: " + ("[green]met[/]" if efficiency >= TARGET
                                                                     else "[red]not met[/]"))
    print(f"llm: calls_per_s={rate:.1f} ideal_calls_per_s={ideal:.1f} efficiency={efficiency:.3f}", flush=True)


if __name__ == "__main__":
    main()
