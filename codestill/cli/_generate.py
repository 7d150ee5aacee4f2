"""`codestill generate`: a file of seeds in, verified training data out, resumable at any point.

    codestill generate --seeds problems.jsonl --pipeline solve --model openai:NAME@URL --out runs/mbpp
    codestill generate --seeds seeds.jsonl --pipeline selfalign+solve --concurrency 64
    codestill generate --seeds tasks.jsonl --pipeline evol+solve --engine ray --workers 4

Running the same command again resumes the run in ``--out`` (default ``runs/<seeds file name>``). Ctrl-C
once stops taking inputs and lets those in flight finish; twice drops them (done again on resume).
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from codestill.cli._common import ConfigOpt, SetOpt, settings_from
from codestill.errors import ConfigError
from codestill.run import RunDir

PIPELINE_HELP = "solve (instructions in), evol+solve (instructions, evolved first), selfalign+solve (seed functions)"


def _resume_command(seeds: Path, pipeline: str, out: Path, shard: str | None, limit: int | None,
                    engine: str) -> str:
    parts = ["codestill generate", f"--seeds {seeds}", f"--pipeline {pipeline}", f"--out {out}"]
    parts += [f"--shard {shard}"] if shard else []
    parts += [f"--limit {limit}"] if limit else []
    parts += ["--engine ray"] if engine == "ray" else []
    return " ".join(parts) + "   (plus the same --model / --set options)"


def generate_command(
    seeds: Annotated[Path, typer.Option(help="Inputs: instructions ({\"instruction\": ...} lines, Task records, "
                                             "Code Alpaca lines) or, for selfalign+solve, seed functions; JSONL "
                                             "or a folder saved with datasets (README: Seed formats).")],
    pipeline: Annotated[str, typer.Option(help=PIPELINE_HELP)] = "solve",
    model: Annotated[str | None, typer.Option(help="Chat model of every agent (default llm.model): openai:NAME, "
                                                   "openai:NAME@URL (vLLM, codestill sim) or hf:MODEL.")] = None,
    out: Annotated[Path | None, typer.Option(help="The run directory (default runs/<seeds name>); an existing "
                                                  "one is resumed.")] = None,
    concurrency: Annotated[int, typer.Option(min=1, help="Inputs (and graph runs) in flight at once.")] = 64,
    limit: Annotated[int | None, typer.Option(min=1, help="Only the first N inputs (of this shard).")] = None,
    shard: Annotated[str | None, typer.Option(help="i/n: only every n-th input from the i-th (0-based).")] = None,
    strict: Annotated[bool, typer.Option(help="Refuse the whole file if any line is bad.")] = False,
    engine: Annotated[str, typer.Option(help="local, or ray: inputs sharded over Ray workers.")] = "local",
    workers: Annotated[int, typer.Option(min=1, help="Ray workers (--engine ray).")] = 2,
    ray_address: Annotated[str | None, typer.Option(help="A Ray cluster to join (default: start one here).")] = None,
    llm_concurrency: Annotated[int | None, typer.Option(min=1, help="LLM calls in flight per endpoint "
                                                                    "(llm.max_concurrency).")] = None,
    sandbox_pool: Annotated[int | None, typer.Option(min=1, help="Warm sandbox containers "
                                                                 "(sandbox.pool_size).")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print stats.json instead of tables.")] = False,
    config: ConfigOpt = None,
    set_: SetOpt = None,
) -> None:
    """Run a pipeline over a file of seeds into a run directory: trajectories, ledger, traces, stats."""
    from codestill.run._inputs import read_inputs
    from codestill.run._inputs import shard as pick
    from codestill.run._pipelines import PIPELINES, input_kind
    from codestill.run._runner import code_version, locked, prepare, redacted_argv, started
    from codestill.run._session import model_specs

    if pipeline not in PIPELINES:
        raise ConfigError(f"--pipeline {pipeline!r} is not one of {', '.join(PIPELINES)}")
    if engine not in ("local", "ray"):
        raise ConfigError(f"--engine {engine!r}: use local or ray")
    settings = settings_from(config, set_, **{"llm.max_concurrency": llm_concurrency,
                                              "sandbox.pool_size": sandbox_pool})
    err = Console(stderr=True, highlight=False)
    inputs = read_inputs(seeds, input_kind(pipeline), strict=strict)
    for message in inputs.messages()[:10]:
        err.print(f"[yellow]skipped:[/] {message}", soft_wrap=True)
    if len(inputs.bad) > 10:
        err.print(f"[yellow]... and {len(inputs.bad) - 10} more bad lines (all in stats.json)[/]")
    items = pick(inputs.items, shard)[:limit] if limit else pick(inputs.items, shard)
    run_dir = out or settings.runs_dir / seeds.stem
    specs = model_specs(settings, model, {})
    instruct_spec = model or settings.llm.model
    record = {"run": run_dir.name, "pipeline": pipeline, "seeds": str(seeds), "seeds_sha256": inputs.sha256,
              "inputs": len(items), "bad_lines": len(inputs.bad), "shard": shard, "limit": limit,
              "concurrency": concurrency, "engine": engine, "workers": workers if engine == "ray" else None,
              "models": {**specs, **({"instructions": instruct_spec} if pipeline != "solve" else {})},
              "settings": settings.record(), "code": code_version(), "argv": redacted_argv(sys.argv[1:]),
              "started": started()}
    resume = _resume_command(seeds, pipeline, run_dir, shard, limit, engine)
    with locked(run_dir):
        earlier = prepare(run_dir, record)
        if earlier is not None:
            err.print(f"resuming the run in {run_dir}")
        if engine == "ray":
            from codestill.run._ray import run_ray

            result = run_ray(settings, specs, instruct_spec, items, run_dir, pipeline=pipeline,
                             concurrency=concurrency, workers=workers, address=ray_address, console=err)
        else:
            result = _run_here(settings, specs, instruct_spec, items, run_dir, pipeline, concurrency, err)
        stats = _write_stats(run_dir, result, len(items), inputs.messages())
    _report(json_out, stats, run_dir, result, resume)


def _run_here(settings: Any, specs: dict[str, str], instruct_spec: str, items: list[Any], run_dir: Path,
              pipeline: str, concurrency: int, err: Console) -> dict[str, Any]:
    from codestill.run._display import BatchDisplay
    from codestill.run._ledger import read_entries
    from codestill.run._open import run_local
    from codestill.run._runner import install_stop

    done_before = len({e.input_id for e in read_entries(run_dir)} & {i.id for i in items})
    display = BatchDisplay(err, len(items), done_before, f"{pipeline} {run_dir.name}")

    async def main() -> Any:
        stop = asyncio.Event()
        me = asyncio.current_task()
        assert me is not None

        def first() -> None:
            display.note = (f"stopping: {display.in_flight} in flight finish and are saved; Ctrl-C again to drop "
                            "them (they are done again on resume)")

        remove = install_stop(asyncio.get_running_loop(), stop, me, first)
        try:
            return await run_local(settings, specs, instruct_spec, items, run_dir, pipeline=pipeline,
                                   concurrency=concurrency, stop=stop, display=display)
        finally:
            remove()

    with display:
        try:
            outcome, wall, sandbox = asyncio.run(main())
        except (KeyboardInterrupt, asyncio.CancelledError):
            return {"interrupted": True, "fatal": None, "stopped": True, "sandbox": {}, "wall_s": None}
    return {"interrupted": False, "fatal": outcome.fatal, "stopped": outcome.stopped, "sandbox": sandbox,
            "wall_s": wall}


def _write_stats(run_dir: Path, result: dict[str, Any], total: int, bad: list[str]) -> dict[str, Any]:
    from codestill.records import write_json
    from codestill.run._ledger import read_wall
    from codestill.run._tally import Tally

    wall = result.get("wall_s")
    if wall is None:  # interrupted, or a Ray run: the clock the sessions kept in the ledger
        wall = read_wall(run_dir)
    tally = Tally.from_run(run_dir)
    stats = {**tally.to_json(wall, total), "bad_lines": bad, "sandbox_this_session": result.get("sandbox", {}),
             "complete": tally.inputs >= total,
             "stopped_by": ("error: " + str(result["fatal"])) if result.get("fatal") else
                           ("user" if result.get("stopped") else None)}
    write_json(RunDir(run_dir).stats_path, stats)
    return stats


def _report(json_out: bool, stats: dict[str, Any], run_dir: Path, result: dict[str, Any], resume: str) -> None:
    import json

    console = Console()
    if json_out:
        console.print_json(json.dumps(stats))
    else:
        y = stats["yield"]
        table = Table(title=f"generate: {run_dir}", show_header=False)
        for k in ("inputs", "instructions", "evolutions_eliminated", "solved_tasks", "plans", "modules_retrieved",
                  "modules_written", "attempts", "repairs", "accepted"):
            table.add_row(k.replace("_", " "), str(y[k]))
        table.add_row("rejection reasons", ", ".join(f"{k} {v}" for k, v in stats["rejection_reasons"].items()) or "-")
        table.add_row("tokens per accepted", str(stats["tokens"]["per_accepted"]))
        table.add_row("wall s per accepted", str(stats["wall_s_per_accepted"]))
        console.print(table)
        where = RunDir(run_dir)
        console.print(f"data: {where.trajectories_path}\nstats: {where.stats_path}\ntraces: {where.traces_path}\n"
                      f"next: codestill export {run_dir}   |   codestill traces ls --store {where.traces_path}",
                      highlight=False, soft_wrap=True)
    err = Console(stderr=True, highlight=False)
    if result.get("fatal") is not None:
        err.print(f"[bold red]stopped:[/] {result['fatal']}\nfix that, then resume with: {resume}", soft_wrap=True)
        raise typer.Exit(1)
    if not stats["complete"]:
        err.print(f"stopped with {stats['inputs']['done']} of {stats['inputs']['total']} inputs done; "
                  f"resume with: {resume}", soft_wrap=True)
        raise typer.Exit(130 if result.get("stopped") else 1)
