"""Batch throughput: `codestill generate`'s runner against the ideal bound for the same work.

Starts ``codestill sim`` at 0.2 s latency (no planted bugs, no faults) and runs ``--pipeline solve`` over
200 MBPP problems at concurrency 64 through the same code a `codestill generate` run uses
(``codestill.run._open.run_local``: ledger, trace store, embedded Chroma memory, Docker sandbox pool).

    ideal_s = LLM calls made x 0.2 s / 64  +  measured sandbox time

where the sandbox time is the wall time during which at least one sandbox run was in flight (the pool
measured from outside, as the runner saw it). A runner that only ever waited on the model at full
concurrency, and on the sandbox when it had to, would take ``ideal_s``. ``efficiency = ideal_s / wall``,
with ``wall`` from the first input's start to the last input's commit: the work the bound describes.
Opening the run (loading the embedding model, warming the sandbox pool) and closing it are fixed costs
outside that window; the table shows them on their own line. The simulated teacher works out its
tester's extra tests by running the reference solutions in child processes; a real teacher does that
work on its own machine, so the benchmark has the sim do it before the clock starts
(``warm_tester``, kept in ``--sim-cache``) instead of taking cores from the runner it measures.
``lost`` counts inputs without a trajectory, ``duplicated`` extra trajectories of an input.

    .venv/bin/python bench/batch_throughput.py [--n 200] [--concurrency 64] [--latency 0.2] [--sim-cache DIR]

Target: efficiency >= 0.8, lost = 0, duplicated = 0. Last line:

    batch: samples_per_s=<float> ideal_samples_per_s=<float> efficiency=<float> lost=<int> duplicated=<int>
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections import Counter
from pathlib import Path

from _progress import progress_bar
from pydantic import SecretStr
from rich.console import Console
from rich.table import Table

from codestill.config import LLMConfig, MemoryConfig, Settings
from codestill.data import load_mbpp
from codestill.run._ledger import committed
from codestill.run._open import run_local
from codestill.run._tally import Tally
from codestill.runtime import prefer_passive_openmp
from codestill.schemas import Trajectory
from codestill.sim import SimConfig, serve_subprocess, warm_tester

console = Console(stderr=True)


class _Bar:
    """The runner's progress hooks, drawn as the benchmarks' progress bar."""

    def __init__(self, bar, task) -> None:
        self.bar, self.task, self.sandbox = bar, task, None
        self.first: float | None = None
        self.last = 0.0

    def start(self, _input_id: str) -> None:
        if self.first is None:
            self.first = time.perf_counter()

    def done(self, _entry, _trajectories) -> None:
        self.last = time.perf_counter()
        self.bar.advance(self.task)


async def one_run(args: argparse.Namespace, tmp: Path) -> dict:
    problems = load_mbpp()[: args.n]
    sim = SimConfig(seed=1, latency_s=args.latency, cache_dir=str(args.sim_cache))
    console.print(f"the sim works out its tester's tests for {len(problems)} problems (kept in {args.sim_cache})")
    warm_tester(sim, [p.id for p in problems])
    with serve_subprocess(sim) as url:
        spec = f"openai:codestill-sim@{url}"
        settings = Settings(llm=LLMConfig(model=spec, api_key=SecretStr("sk-bench"), max_concurrency=args.concurrency),
                            memory=MemoryConfig(path=tmp / "memory"))
        specs: dict[str, str] = dict.fromkeys(("planner", "decomposer", "coder", "tester", "critic"), spec)
        with progress_bar(console, "input") as bar:
            hooks = _Bar(bar, bar.add_task("solve", total=len(problems)))
            start = time.perf_counter()
            outcome, _, sandbox = await run_local(settings, specs, spec, [p.to_task() for p in problems],
                                                  tmp / "run", pipeline="solve", concurrency=args.concurrency,
                                                  display=hooks)
            total = time.perf_counter() - start
    assert outcome.fatal is None, outcome.fatal
    wall = hooks.last - (hooks.first or start)
    ids = Counter(Trajectory.model_validate_json(line).task.id for _, lines in committed(tmp / "run") for line in lines)
    tally = Tally.from_run(tmp / "run")
    llm_s = tally.llm_calls * args.latency / args.concurrency
    ideal = llm_s + sandbox["busy_s"]
    return {"n": len(problems), "wall": wall, "setup": total - wall, "calls": tally.llm_calls, "llm_s": llm_s, "sandbox_s": sandbox["busy_s"],
            "sandbox_runs": sandbox["runs"], "ideal": ideal, "accepted": tally.accepted,
            "lost": sum(1 for p in problems if p.id not in ids), "duplicated": sum(c - 1 for c in ids.values())}


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--latency", type=float, default=0.2)
    ap.add_argument("--sim-cache", type=Path, default=Path(".codestill/bench-sim-cache"))
    args = ap.parse_args()
    prefer_passive_openmp()
    with tempfile.TemporaryDirectory(prefix="codestill-batch-bench-") as d:
        r = asyncio.run(one_run(args, Path(d)))
    samples, ideal = r["n"] / r["wall"], r["n"] / r["ideal"]
    table = Table(title=f"batch: {r['n']} MBPP problems, --pipeline solve, concurrency {args.concurrency}, "
                        f"sim latency {args.latency} s")
    for col in ("", "wall s", "samples/s"):
        table.add_column(col, justify="right")
    table.add_row("measured: first input started -> last committed", f"{r['wall']:.1f}", f"{samples:.2f}")
    table.add_row("(before and after that: opening memory, sandbox pool, traces)", f"{r['setup']:.1f}", "")
    table.add_row(f"ideal ({r['calls']} calls x {args.latency} / {args.concurrency} = {r['llm_s']:.1f} s "
                  f"+ sandbox busy {r['sandbox_s']:.1f} s, {r['sandbox_runs']} runs)", f"{r['ideal']:.1f}", f"{ideal:.2f}")
    console.print(table)
    console.print(f"accepted {r['accepted']} of {r['n']}")
    print(f"batch: samples_per_s={samples:.2f} ideal_samples_per_s={ideal:.2f} efficiency={r['ideal'] / r['wall']:.3f} "
          f"lost={r['lost']} duplicated={r['duplicated']}")


if __name__ == "__main__":
    main()
