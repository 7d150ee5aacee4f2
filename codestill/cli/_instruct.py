"""`codestill evolve` (Code Evol-Instruct) and `codestill instruct` (SelfCodeAlign concepts -> instructions).

    codestill seeds mine --stdlib --limit 50 --out seeds.jsonl
    codestill instruct --seeds seeds.jsonl --out instructions.jsonl --model openai:codestill-sim@http://...
    codestill evolve --seeds instructions.jsonl --rounds 3 --out evolved.jsonl

Both stream their results to ``--out`` as they come; running the same command again skips what is
done. Beside ``--out`` go the failures (``*.eliminated.jsonl``, ``*.failed.jsonl``) and the stats with
the settings used (``*.stats.json``; ``structured`` is the method the agents used, which
``llm.structured=auto`` finds out by asking the endpoint once, ``codestill._capability``). Progress goes
to stderr, the summary to stdout.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import shlex
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from codestill.cli._common import ConfigOpt, SetOpt, settings_from
from codestill.config import Settings
from codestill.errors import ConfigError
from codestill.progress import RateColumn
from codestill.records import read_appended, write_json, write_jsonl
from codestill.run._inputs import EXPECTED, Inputs, read_inputs
from codestill.runtime import settle_heap
from codestill.schemas import Task

if TYPE_CHECKING:
    from codestill._capability import StructuredProbes

ModelOpt = Annotated[str | None, typer.Option(help="Chat model spec (default: llm.model), e.g. "
                                                   "openai:codestill-sim@http://127.0.0.1:8000/v1.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the stats as JSON.")]
StrictOpt = Annotated[bool, typer.Option(help="Refuse the whole seed file if any line is bad.")]


def _progress(console: Console, unit: str) -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), RateColumn(unit),
                    TimeRemainingColumn(), console=console, transient=False)


def _shown(inputs: Inputs[Any], err: Console) -> None:
    """The bad lines the reader passed over (``codestill.run._inputs``, every command's seed reader)."""
    for message in inputs.messages()[:10]:
        err.print(f"[yellow]skipped:[/] {message}", soft_wrap=True)
    if len(inputs.bad) > 10:
        err.print(f"[yellow]... and {len(inputs.bad) - 10} more bad {inputs.unit}s (all in the stats file)[/]")


def _table(title: str, rows: Sequence[tuple[str, Any]]) -> Table:
    table = Table(title=title, show_header=False)
    for key, value in rows:
        table.add_row(key, str(value))
    return table


async def _with_model(settings: Settings, spec: str, work: Any, probes: StructuredProbes | None = None) -> Any:
    """``work(deps, structured)`` on the instruction stages' model (``open_deps``'s instruct mode)."""
    from codestill.run import open_deps

    async with open_deps(settings, "instruct", instruct_spec=spec, probes=probes) as opened:
        assert opened.instruct is not None
        settle_heap()  # everything is loaded: from here on a full collection would stall every call in flight
        return await work(opened.instruct, opened.structured["instruct"])


def _dev_command(command: str) -> Any:
    """A dev check that runs ``command`` with the round's instructions; its last stdout line is the metric."""

    async def check(round_: int, tasks: Sequence[Task]) -> float:
        with tempfile.TemporaryDirectory(prefix="codestill-dev-") as tmp:
            path = Path(tmp, f"round-{round_}.jsonl")
            write_jsonl(path, tasks)
            argv = [part.replace("{file}", str(path)).replace("{round}", str(round_)) for part in shlex.split(command)]
            done = await asyncio.to_thread(subprocess.run, argv, capture_output=True, text=True)
        lines = done.stdout.strip().splitlines()
        try:
            if done.returncode != 0:
                raise ValueError
            return float(lines[-1].split()[-1])
        except (ValueError, IndexError):
            raise ConfigError(f"--dev-command {command!r} (round {round_}) exited {done.returncode} without a "
                              "number on its last stdout line; it must print the metric last") from None

    return check


def _dev_solve(settings: Settings, spec: str, n: int, probes: StructuredProbes) -> Any:
    """A dev check: the solve graph's accept rate on ``n`` of the round's instructions (chosen stably);
    ``probes``: the command's, so the endpoint is probed once for all rounds."""

    async def check(round_: int, tasks: Sequence[Task]) -> float:
        from codestill.run._session import AGENTS, open_session
        from graphs import solve

        sample = sorted(tasks, key=lambda t: hashlib.sha256(t.id.encode()).hexdigest())[:n]
        session = await open_session(settings, dict.fromkeys(AGENTS, spec), interactive=False, probes=probes)
        try:
            trajectories = await asyncio.gather(*(solve(t, session.deps) for t in sample))
        finally:
            await session.aclose()
        return sum(t.verdict == "accepted" for t in trajectories) / max(1, len(trajectories))

    return check


def evolve_command(
    seeds: Annotated[Path, typer.Option(help=f"A JSONL of {EXPECTED['task']}; or a folder saved with "
                                             "datasets (save_to_disk).")],
    out: Annotated[Path, typer.Option(help="Output JSONL: the originals and every round's survivors.")],
    rounds: Annotated[int | None, typer.Option(help="Evolution rounds (default evol.rounds, 3).")] = None,
    model: ModelOpt = None,
    dev_command: Annotated[str | None, typer.Option(
        help="After each round run this command ({file}: the round's instructions as JSONL, {round}); its last "
             "stdout line is a metric, and the rounds stop when it drops.")] = None,
    dev_solve: Annotated[int, typer.Option(
        help="After each round solve this many of its instructions with the solve graph (sandbox, memory); "
             "the rounds stop when the accept rate drops. 0 = off.")] = 0,
    strict: StrictOpt = False,
    config: ConfigOpt = None,
    set_: SetOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Evolve instructions with WizardCoder's Code Evol-Instruct, round after round."""
    from codestill._capability import StructuredProbes
    from codestill.run._rounds import Eliminated, EvolPaths, run_rounds
    from graphs import InstructDeps

    settings = settings_from(config, set_, **{"evol.rounds": rounds})
    spec = model or settings.llm.model
    if dev_command and dev_solve:
        raise ConfigError("give --dev-command or --dev-solve, not both")
    err = Console(stderr=True)
    inputs = read_inputs(seeds, "task", strict=strict)
    _shown(inputs, err)
    tasks = inputs.items
    probes = StructuredProbes()  # the endpoint is asked once which structured method it honours
    dev = (_dev_command(dev_command) if dev_command else _dev_solve(settings, spec, dev_solve, probes) if dev_solve
           else None)
    paths = EvolPaths(out)
    used: dict[str, Any] = {}  # what the run used where the settings leave it open
    with _progress(err, "ins") as bar:
        bars: dict[int, Any] = {}  # round -> its progress bar; without a dev check all rounds run at once
        totals: dict[int, int] = {}

        def on_round(r: int, todo: int) -> None:
            bars[r], totals[r] = bar.add_task(f"round {r}", total=todo), todo

        def on_result(result: Task | Eliminated) -> None:
            r = result.round if isinstance(result, Eliminated) else result.origin.round if result.origin else 0
            if r in bars:
                bar.advance(bars[r])
            if isinstance(result, Eliminated):  # its lineage will not be in any later round
                for later in (k for k in bars if k > r):
                    totals[later] = max(0, totals[later] - 1)
                    bar.update(bars[later], total=totals[later])

        async def work(deps: InstructDeps, structured: str) -> Any:
            used["structured"] = structured
            used["concurrency"] = deps.evol_concurrency
            return await run_rounds(tasks, deps, paths, rounds=settings.evol.rounds, dev_check=dev,
                                    on_round=on_round, on_result=on_result)

        stats = asyncio.run(_with_model(settings, spec, work, probes))
    summary = {**stats.to_json(), "out": str(out), "model": spec, "bad_lines": inputs.messages(),
               **used, "settings": settings.record()}
    write_json(paths.stats, summary)
    _report(json_out, summary, "evolve", [("originals", stats.originals),
                                          *((f"round {r}", dict(c)) for r, c in sorted(stats.per_round.items())),
                                          ("eliminated", dict(stats.eliminations()) or "none"),
                                          ("dev metric", stats.metrics or "-"),
                                          ("stopped after round", stats.stopped_after or "-"), ("out", out)])


def instruct_command(
    seeds: Annotated[Path, typer.Option(help=f"A JSONL of {EXPECTED['seed']}; or a folder saved with "
                                             "datasets (save_to_disk).")],
    out: Annotated[Path, typer.Option(help="Output JSONL of Task records (instructions).")],
    model: ModelOpt = None,
    strict: StrictOpt = False,
    config: ConfigOpt = None,
    set_: SetOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Write instructions from seed functions (SelfCodeAlign): concepts first, then a task from them."""
    from graphs import InstructDeps
    from graphs.selfalign import NoInstruction, failed_path, run_instruct

    settings = settings_from(config, set_)
    spec = model or settings.llm.model
    err = Console(stderr=True)
    inputs = read_inputs(seeds, "seed", strict=strict)
    _shown(inputs, err)
    items = inputs.items
    used: dict[str, Any] = {}  # what the run used where the settings leave it open
    with _progress(err, "seed") as bar:
        tid = bar.add_task("instruct", total=len(items))

        async def work(deps: InstructDeps, structured: str) -> Any:
            used["structured"] = structured
            used["concurrency"] = deps.selfalign_concurrency
            return await run_instruct(items, deps, out, on_result=lambda *_: bar.advance(tid))

        usage = asyncio.run(_with_model(settings, spec, work))
    written = read_appended(out, Task)
    failed = read_appended(failed_path(out), NoInstruction)
    by_category: dict[str, int] = {}
    for t in written:
        key = f"{t.origin.category}/{t.origin.difficulty}" if t.origin else "?"
        by_category[key] = by_category.get(key, 0) + 1
    counts = {"seeds": len(items), "instructions": len(written), "seeds_without": len(failed)}
    summary = {**counts, "by_category": dict(sorted(by_category.items())),
               "failures": {stage: sum(f.stage == stage for f in failed) for stage in ("concepts", "instruction")},
               "usage": usage.model_dump(), "out": str(out), "model": spec, "bad_lines": inputs.messages(),
               **used, "settings": settings.record()}
    write_json(out.with_name(out.stem + ".stats.json"), summary)
    _report(json_out, summary, "instruct", [("seeds", counts["seeds"]), ("instructions", counts["instructions"]),
                                            ("seeds without one", counts["seeds_without"]),
                                            ("category/difficulty", summary["by_category"]), ("out", out)])


def _report(json_out: bool, summary: dict[str, Any], title: str, rows: Sequence[tuple[str, Any]]) -> None:
    console = Console()
    if json_out:
        console.print_json(json.dumps({k: v for k, v in summary.items() if k != "settings"}))
    else:
        console.print(_table(title, rows))
