"""`codestill demo` (what `make demo` runs): the batch pipeline on 20 bundled MBPP problems, then the
SFT export, and where to look at what it made.

Without ``--model`` and without ``OPENAI_API_KEY`` the model is ``codestill sim``, started for the demo
(with a few planted bugs, so repairs show) and stopped after it; the demo's memory then lives in the run
directory, so it never fills the memory real runs share. With either, the same command uses that model.
Running it again resumes (or, when finished, just reports) the same run.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from codestill.cli._common import ConfigOpt, SetOpt
from codestill.run import RunDir

# MBPP problems whose reference solution also passes MBPP+'s extra tests (the sim answers with it).
DEMO_PROBLEMS = ("2", "4", "6", "7", "8", "9", "11", "12", "14", "17", "18", "19", "20", "56", "57", "58", "59",
                 "61", "62", "63")


@contextlib.contextmanager
def _model(model: str | None, console: Console) -> Iterator[tuple[str, list[str]]]:
    """The model spec to use, and the settings it needs; the sim is served for the block when it is the one."""
    if model or os.environ.get("OPENAI_API_KEY"):
        yield model or "openai:gpt-4o-mini", []
        return
    from codestill.sim import SimConfig, serve_subprocess

    console.print("no --model and no OPENAI_API_KEY: starting codestill sim, the simulated teacher, for the demo")
    with serve_subprocess(SimConfig(seed=0, bug_rate=0.25, fault_rate=0.05, faults=("429", "500"))) as url:
        yield f"openai:codestill-sim@{url}", ["llm.api_key=codestill-sim"]


def demo_command(
    model: Annotated[str | None, typer.Option(help="A real model (openai:NAME, openai:NAME@URL, hf:MODEL); "
                                                   "default: OPENAI_API_KEY's gpt-4o-mini if set, else the sim.")] = None,
    out: Annotated[Path, typer.Option(help="The demo's run directory.")] = Path("runs/demo"),
    config: ConfigOpt = None,
    set_: SetOpt = None,
) -> None:
    """Generate verified training data from 20 bundled problems, export it, and show where it all is."""
    from codestill.cli._export import export_command
    from codestill.cli._generate import generate_command
    from codestill.data import load_mbpp

    console = Console(highlight=False)
    bank = {p.id.rsplit("/", 1)[-1]: p for p in load_mbpp()}
    out.mkdir(parents=True, exist_ok=True)
    seeds = out.parent / f"{out.name}-problems.jsonl"
    seeds.write_text("".join(bank[i].to_task().model_dump_json() + "\n" for i in DEMO_PROBLEMS))
    with _model(model, console) as (spec, extra):
        sim = spec.startswith("openai:codestill-sim@")
        sets = [*(set_ or []), *extra, *([f"memory.path={out / 'memory'}"] if sim else [])]
        generate_command(seeds=seeds, pipeline="solve", model=spec, out=out, concurrency=16, config=config,
                         set_=sets)
    console.print()
    export_command(run=out, decontam=False)  # the problems are MBPP's: decontaminating would remove them all
    console.print(f"\n[bold]demo done.[/]\n  data:    {RunDir(out).trajectories_path}  (SFT records: "
                  f"{RunDir(out).export_path / 'sft.jsonl'}, data card {RunDir(out).export_path / 'README.md'})\n"
                  f"  stats:   {out / 'stats.json'}\n  traces:  {out / 'traces.sqlite'}\n"
                  f"inspect:   codestill traces ls --store {out / 'traces.sqlite'}   |   "
                  f"codestill ui --traces {out / 'traces.sqlite'}", soft_wrap=True)
