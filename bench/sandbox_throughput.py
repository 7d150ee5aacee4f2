"""Sandbox throughput: executions per second of the warm pool against one container per run.

Runs the 200 programs of ``bench/data/sandbox_programs.jsonl`` (MBPP reference solutions with
three asserts each; half of them carry a planted bug, see ``bench/make_sandbox_programs.py``)
through two backends, with ``Limits(cpu_s=4)``:

* warm: ``DockerSandbox``, a pool of locked-down containers (one per core) that are reused.
  Starting the pool and a few warm-up runs are not timed; then all programs are submitted at
  once (``asyncio.gather``, at most 64 in flight) and timed. ``warm_exec_per_s = N / elapsed``.
* cold: ``ColdSandbox``, a fresh container per run (the ``docker run`` per execution baseline),
  as many runs in flight as there are cores. ``cold_exec_per_s = N / elapsed``.

``wrong`` counts the results, over both runs, whose status differs from the recorded
``expected`` status: speed does not count if verdicts are wrong.

Targets on a 2-core machine: ``warm_exec_per_s >= 200``, ``ratio = warm / cold >= 20``,
``wrong = 0``.

    .venv/bin/python bench/sandbox_throughput.py [--limit N]

The last line printed is machine-readable::

    sandbox: warm_exec_per_s=<float> cold_exec_per_s=<float> ratio=<float> wrong=<int>
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from pathlib import Path

from _progress import progress_bar
from rich.console import Console
from rich.table import Table

from codestill.config import SandboxConfig
from codestill.schemas import ExecResult, Limits
from tools.sandbox import ColdSandbox, DockerSandbox

DATA = Path(__file__).resolve().parent / "data" / "sandbox_programs.jsonl"
LIMITS = Limits(cpu_s=4)
WARM_IN_FLIGHT = 64
TARGET_WARM = 200.0
TARGET_RATIO = 20.0

console = Console()


def load(limit: int | None) -> list[dict]:
    records = [json.loads(line) for line in DATA.read_text().splitlines() if line.strip()]
    return records[:limit] if limit is not None else records


async def run_all(sandbox: DockerSandbox | ColdSandbox, records: list[dict], in_flight: int,
                  label: str) -> tuple[float, list[ExecResult]]:
    """Run every record with at most ``in_flight`` at once; (elapsed seconds, results in order)."""
    gate = asyncio.Semaphore(in_flight)
    with progress_bar(console, "exec") as progress:
        task = progress.add_task(label, total=len(records))

        async def one(rec: dict) -> ExecResult:
            async with gate:
                result = await sandbox.run(rec["program"], rec["tests"], LIMITS)
            progress.advance(task)
            return result

        start = time.perf_counter()
        results = await asyncio.gather(*(one(r) for r in records))
        elapsed = time.perf_counter() - start
    return elapsed, list(results)


async def bench(records: list[dict]) -> tuple[float, float, list[tuple[str, dict, ExecResult]]]:
    cores = len(os.sched_getaffinity(0))
    config = SandboxConfig()
    mismatches: list[tuple[str, dict, ExecResult]] = []

    spinner = console.status(f"starting and warming the pool ({config.pool_size} containers)")
    spinner.start()
    async with DockerSandbox(config) as sandbox:
        warmup = records[: 2 * config.pool_size]
        await asyncio.gather(*(sandbox.run(r["program"], r["tests"], LIMITS) for r in warmup))
        spinner.stop()
        warm_s, warm_results = await run_all(sandbox, records, WARM_IN_FLIGHT, "warm")
    mismatches += [("warm", rec, res) for rec, res in zip(records, warm_results, strict=True)
                   if res.status != rec["expected"]]

    async with ColdSandbox(config) as sandbox:
        cold_s, cold_results = await run_all(sandbox, records, cores, "cold")
    mismatches += [("cold", rec, res) for rec, res in zip(records, cold_results, strict=True)
                   if res.status != rec["expected"]]

    n = len(records)
    table = Table(title=f"sandbox throughput: {n} programs, {cores} cores, cpu_s={LIMITS.cpu_s:g}")
    table.add_column("backend")
    table.add_column("in flight", justify="right")
    table.add_column("elapsed s", justify="right")
    table.add_column("exec/s", justify="right")
    table.add_column("wrong", justify="right")
    for name, in_flight, secs in (("warm pool", WARM_IN_FLIGHT, warm_s), ("cold", cores, cold_s)):
        wrong = sum(m[0] == name.split()[0] for m in mismatches)
        table.add_row(name, str(in_flight), f"{secs:.2f}", f"{n / secs:.1f}", str(wrong))
    console.print(table)
    return n / warm_s, n / cold_s, mismatches


def main() -> None:
    parser = argparse.ArgumentParser(description="Warm-pool vs cold sandbox throughput.")
    parser.add_argument("--limit", type=int, default=None, metavar="N", help="run only the first N programs")
    args = parser.parse_args()
    records = load(args.limit)
    if not records:
        raise SystemExit(f"no programs in {DATA}")

    warm, cold, mismatches = asyncio.run(bench(records))
    ratio = warm / cold
    for phase, rec, res in mismatches:
        console.print(f"[red]wrong[/] {phase} task {rec['task_id']}: expected {rec['expected']}, "
                      f"got {res.status}: {res.message[:200]}", markup=True, highlight=False)
    ok = warm >= TARGET_WARM and ratio >= TARGET_RATIO and not mismatches
    console.print(f"targets (2-core): warm >= {TARGET_WARM:g}/s, ratio >= {TARGET_RATIO:g}, wrong = 0: "
                  + ("[green]met[/]" if ok else "[red]not met[/]"))
    print(f"sandbox: warm_exec_per_s={warm:.1f} cold_exec_per_s={cold:.1f} ratio={ratio:.1f} "
          f"wrong={len(mismatches)}", flush=True)


if __name__ == "__main__":
    main()
