"""Instruction stages against the ideal bound of a model server: `codestill evolve` and `codestill
instruct` as whole processes, beside plain traced chat calls (the ceiling), all in one run.

Starts ``bench/_stub_server.py`` (a plain OpenAI-compatible server shipped with this benchmark: every
request answered after ``--latency`` seconds, a forced tool call or ``json_schema`` answered from the
schema, requests counted) and runs, one after another, each as its own process with CLI start-up:

    evolve     ``codestill evolve``: ``--n`` instructions (MBPP's, each a distinct task) x ``--rounds``
               rounds, judge off, ``evol.concurrency`` and ``llm.max_concurrency`` = ``--concurrency``
    instruct   ``codestill instruct``: ``--n`` seed functions (MBPP's reference solutions), two calls
               each (concepts, then the instruction), ``selfalign.concurrency`` = ``--concurrency``
    ceiling    this file with ``--ceiling N``: N plain chat calls (a system and a user message) through
               ``codestill.llm.make_chat_model`` with the SQLite tracer attached, ``--concurrency`` at
               once; once with as many calls as evolve made and once with as many as instruct made

    efficiency = calls per second (from process start to exit) / (concurrency / latency)

For reference (not in the verdict) the same calls are also made asking for a pydantic object each
(``structured N`` rows: ``codestill.structured.ask``, a forced tool call read and validated, as every
agent call of the stages is made), still without a graph.

The ceiling process is set up as the CLI sets up its own (``codestill.runtime.settle_heap`` once its
client is made), so the comparison is of the work per call, not of process tuning. Start-up (process
start to the server's first request), run (first request to last answer) and tail (last answer to
exit) are shown per process. ``lost`` counts inputs the stages dropped: an evolution of a lineage
that is neither in the output nor eliminated with a reason, a seed with neither an instruction nor a
recorded failure.

    .venv/bin/python bench/instruct_throughput.py [--n 1024] [--rounds 3] [--concurrency 64] [--latency 0.2]
                                                  [--repeat 3]

Every process runs ``--repeat`` times, the six of a repeat one after another, and each is reported
by its fastest run (as ``timeit`` reports the minimum): on a shared 2-core machine one run of the
same process varies by about 5 %, and a slow spell only ever makes a run slower. ``lost`` sums all
repeats.

Target (2-core machine): evolve and instruct >= 0.65 and >= 0.9 x the ceiling of the same number of
calls, lost = 0. The last line printed is::

    instruct: evolve_efficiency=<float> instruct_efficiency=<float> client_efficiency=<float> calls=<int> lost=<int>

where ``client_efficiency`` is the ceiling over both call counts (all ceiling calls / their time); the
verdict compares each stage with the ceiling of its own call count (a process's start-up weighs more
on 2048 calls than on 3072), shown in the table's last column.

Where the time went (py-spy profiles of the two commands on the 2-core machine; before = the code
before issue 28, with the same stub and inputs: evolve 16.2-16.6 s, 0.58; instruct 12.9-13.4 s, 0.49):

- instruct: the OpenAI SDK prepares every request by walking each message against every message
  type; the conceptor sent its eight examples as 16 extra turns, ~2.5 ms of CPU per call, 44 % of the
  process. The examples now go into the one user message (SelfCodeAlign's own prompt layout).
- both: the cyclic garbage collector's full passes walked the ~1M objects the libraries leave alive,
  1.6 s of a 13 s evolve run, each pass stopping every call in flight. The commands now settle the
  heap (``codestill.runtime.settle_heap``) once the client is made, as ``codestill generate`` does.
- evolve: a LangGraph run costs ~0.4 ms of CPU to set up and ~0.2 ms per step; evolve made one run of
  two steps (evolve, screen) per instruction and round, and each round waited for its slowest call.
  It now makes one run per lineage, one step per round (the text rules inside the evolve node), and
  without a dev check no round barrier.
- start-up: every command loaded the memory package (numpy, ~0.13 s) and the simulator's app.
- what is left between a stage and its ceiling: LangGraph's own import (~0.13 s) and ~1 ms of CPU
  per graph run, the CLI's other modules (~0.1 s), structured replies (tool schema, parsing).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from _progress import progress_bar
from rich.console import Console
from rich.table import Table

HERE = Path(__file__).resolve().parent
CODESTILL = str(Path(sys.executable).with_name("codestill"))
TARGET, TARGET_VS_CEILING = 0.65, 0.9
console = Console(stderr=True, width=max(110, Console(stderr=True).width))


@dataclass
class Run:
    label: str
    calls: int
    wall_s: float
    startup_s: float
    run_s: float
    tail_s: float

    def efficiency(self, concurrency: int, latency: float) -> float:
        return self.calls / self.wall_s / (concurrency / latency)


def _get(url: str, path: str, method: str = "GET") -> dict:
    request = urllib.request.Request(url.removesuffix("/v1") + path, method=method)
    with urllib.request.urlopen(request, timeout=10) as reply:
        return json.loads(reply.read())


@contextmanager
def stub(latency: float) -> Iterator[str]:
    proc = subprocess.Popen([sys.executable, str(HERE / "_stub_server.py"), "--latency", str(latency)],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        if not url.startswith("http"):
            raise SystemExit(f"the stub server did not start (exit {proc.poll()})")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def timed(label: str, argv: list[str], url: str, expected: int, log: Path) -> Run:
    """Run ``argv`` to its end with a progress bar of the server's answers; time it from start to exit."""
    _get(url, "/reset", "POST")
    with progress_bar(console, "calls") as progress, log.open("w") as err:
        bar = progress.add_task(label, total=expected)
        start_wall, start = time.time(), time.perf_counter()
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=err)
        while True:
            try:
                proc.wait(timeout=0.25)  # returns the moment it exits: the wall time is not rounded up
                break
            except subprocess.TimeoutExpired:
                progress.update(bar, completed=_get(url, "/stats")["requests"])
        wall = time.perf_counter() - start
        end_wall = time.time()
        stats = _get(url, "/stats")
        progress.update(bar, completed=stats["requests"])
    if proc.returncode != 0:
        raise SystemExit(f"{label} exited {proc.returncode}; its stderr is in {log}:\n{log.read_text()[-2000:]}")
    first, last = stats.get("first_request", start_wall), stats.get("last_answer", end_wall)
    return Run(label, stats["requests"], wall, first - start_wall, last - first, end_wall - last)


def inputs(n: int, tmp: Path) -> tuple[Path, Path]:
    from codestill.data import load_mbpp
    from codestill.records import write_jsonl
    from codestill.schemas import Seed, Task

    bank = load_mbpp()
    tasks = [Task(id=f"bench-{i}", instruction=f"{bank[i % len(bank)].instruction}\n(Variant {i}.)",
                  source="bench") for i in range(n)]
    seeds = []
    for i in range(n):
        p = bank[i % len(bank)]
        seeds.append(Seed(id=f"bench:{i}", name=p.entry_point, signature=f"def {p.entry_point}(...)",
                          code=p.reference))
    write_jsonl(tmp / "tasks.jsonl", tasks)
    write_jsonl(tmp / "seeds.jsonl", seeds)
    return tmp / "tasks.jsonl", tmp / "seeds.jsonl"


def lost_evolutions(tasks_path: Path, out: Path, rounds: int) -> int:
    """Evolutions a lineage should have tried that are neither in the output nor eliminated."""
    from codestill.records import read_appended, read_jsonl
    from codestill.run._rounds import Eliminated, EvolPaths
    from codestill.schemas import Task

    made = {t.id for t in read_appended(out, Task)}
    gone = {(e.parent_id, e.round) for e in read_appended(EvolPaths(out).eliminated, Eliminated)}
    lost = 0
    for t in read_jsonl(tasks_path, Task):
        lost += t.id not in made  # the originals come first in the output
        parent = t.id
        for r in range(1, rounds + 1):
            if f"{t.id}#r{r}" in made:
                parent = f"{t.id}#r{r}"
            elif (parent, r) in gone:
                break
            else:
                lost += 1
                break
    return lost


def lost_seeds(seeds_path: Path, out: Path) -> int:
    from codestill.records import read_jsonl
    from codestill.schemas import Seed
    from graphs.selfalign import seeds_done

    done = seeds_done(out)
    return sum(s.id not in done for s in read_jsonl(seeds_path, Seed))


def ceiling(n: int, url: str, concurrency: int, structured: bool) -> None:
    """N plain traced chat calls through make_chat_model, as a process of their own (``--ceiling``);
    with ``structured``, each asks for a pydantic object (``codestill.structured.ask``: a forced tool
    call, read and validated) as every agent call of the stages does, still without a graph."""
    from langchain_core.messages import HumanMessage, SystemMessage

    from codestill.config import LLMConfig
    from codestill.llm import aclose, make_chat_model
    from codestill.runtime import settle_heap
    from codestill.traces import SqliteTracer

    if structured:  # only then: the plain ceiling loads nothing the client does not need
        from agents.conceptor import InstructionAnswer
        from codestill.structured import ask
    else:
        InstructionAnswer = ask = None

    async def main(store: Path) -> int:
        model = make_chat_model(f"openai:stub@{url}", LLMConfig(max_concurrency=concurrency))
        settle_heap()  # as the CLI does once its client is made
        gate, failed = asyncio.Semaphore(concurrency), 0
        with SqliteTracer(store) as tracer:

            async def one(i: int) -> None:
                nonlocal failed
                messages = [SystemMessage("You are the codestill evolver. Rewrite the task to be a bit harder."),
                            HumanMessage(f"Task {i}: write a function that returns the sum of a list of integers.")]
                async with gate:
                    try:
                        if ask is not None and InstructionAnswer is not None:  # structured
                            reply = await ask(model, messages, InstructionAnswer, config={"callbacks": [tracer]})
                            failed += reply.value is None
                        else:
                            await model.ainvoke(messages, config={"callbacks": [tracer]})
                    except Exception:  # counted: a ceiling with failed calls is no ceiling
                        failed += 1

            await asyncio.gather(*(one(i) for i in range(n)))
        await aclose(model)
        return failed

    with tempfile.TemporaryDirectory() as tmp:
        failed = asyncio.run(main(Path(tmp) / "traces.sqlite"))
    if failed:
        raise SystemExit(f"{failed} of {n} ceiling calls failed")


def main() -> None:
    parser = argparse.ArgumentParser(description="Instruction stages vs the ideal bound and the chat client.")
    parser.add_argument("--n", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--repeat", type=int, default=3, help="Runs of every process; each is reported by its best.")
    parser.add_argument("--ceiling", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--url", default="", help=argparse.SUPPRESS)
    parser.add_argument("--structured", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.ceiling:
        ceiling(args.ceiling, args.url, args.concurrency, args.structured)
        return
    c, lat = args.concurrency, args.latency
    best: dict[str, Run] = {}  # per process, its fastest of the --repeat runs
    lost = 0
    with tempfile.TemporaryDirectory(prefix="instruct-bench-") as tmp_name, stub(lat) as url:
        tmp = Path(tmp_name)
        tasks, seeds = inputs(args.n, tmp)
        model = ["--model", f"openai:stub@{url}", "--set", f"llm.max_concurrency={c}"]
        for k in range(args.repeat):  # interleaved, so a slow spell of the machine hits every process alike
            out = tmp / f"repeat-{k}"
            out.mkdir()
            runs = [timed("evolve", [CODESTILL, "evolve", "--seeds", str(tasks), "--out", str(out / "evolved.jsonl"),
                                     "--rounds", str(args.rounds), "--set", "evol.judge=false",
                                     "--set", f"evol.concurrency={c}", *model],
                          url, args.n * args.rounds, out / "evolve.log"),
                    timed("instruct", [CODESTILL, "instruct", "--seeds", str(seeds), "--out",
                                       str(out / "instructions.jsonl"), "--set", f"selfalign.concurrency={c}", *model],
                          url, 2 * args.n, out / "instruct.log")]
            for stage in list(runs):
                for kind, extra in (("ceiling", []), ("structured", ["--structured"])):
                    run = timed(f"{kind} {stage.calls}", [sys.executable, __file__, "--ceiling", str(stage.calls),
                                                          "--url", url, "--concurrency", str(c), *extra],
                                url, stage.calls, out / f"{kind}-{stage.label}.log")
                    run.label = f"{kind} {stage.label}"
                    runs.append(run)
            for run in runs:
                if run.label not in best or run.wall_s < best[run.label].wall_s:
                    best[run.label] = run
            lost += lost_evolutions(tasks, out / "evolved.jsonl", args.rounds) + \
                lost_seeds(seeds, out / "instructions.jsonl")
    evolve, instruct = best["evolve"], best["instruct"]
    ceilings = {name: best[f"ceiling {name}"] for name in ("evolve", "instruct")}
    ideal = c / lat
    table = Table(title=f"{args.n} inputs, concurrency {c}, server latency {lat:g} s "
                        f"(ideal {ideal:.0f} calls/s), {os.cpu_count()} cores, best of {args.repeat} runs each")
    for col in ("process", "calls", "wall s", "start-up s", "run s", "tail s", "calls/s", "efficiency",
                "vs ceiling"):
        table.add_column(col, justify="left" if col == "process" else "right")
    verdicts = []
    for stage in (evolve, instruct):
        top = ceilings[stage.label]
        for r in (top, best[f"structured {stage.label}"], stage):
            ratio = r.efficiency(c, lat) / top.efficiency(c, lat)
            table.add_row(r.label, str(r.calls), f"{r.wall_s:.2f}", f"{r.startup_s:.2f}", f"{r.run_s:.2f}",
                          f"{r.tail_s:.2f}", f"{r.calls / r.wall_s:.1f}", f"{r.efficiency(c, lat):.3f}",
                          "" if r is top else f"{ratio:.3f}")
        verdicts.append(stage.efficiency(c, lat) >= TARGET and
                        stage.efficiency(c, lat) >= TARGET_VS_CEILING * top.efficiency(c, lat))
    console.print(table)
    client = sum(r.calls for r in ceilings.values()) / sum(r.wall_s for r in ceilings.values()) / ideal
    met = all(verdicts) and lost == 0
    console.print(f"target (2-core): each stage >= {TARGET} and >= {TARGET_VS_CEILING} x its ceiling, lost = 0: "
                  + ("[green]met[/]" if met else "[red]not met[/]"))
    print(f"instruct: evolve_efficiency={evolve.efficiency(c, lat):.3f} "
          f"instruct_efficiency={instruct.efficiency(c, lat):.3f} client_efficiency={client:.3f} "
          f"calls={evolve.calls + instruct.calls} lost={lost}", flush=True)


if __name__ == "__main__":
    main()
