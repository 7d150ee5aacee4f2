"""`codestill seeds mine`: SelfCodeAlign seed functions from Python source trees (tools/seeds.py).

    codestill seeds mine --stdlib --limit 50 --out seeds.jsonl
    codestill seeds mine ~/src/myproject --out seeds.jsonl

Seeds stream to ``FILE.partial`` batch by batch, with a checkpoint (``FILE.partial.json``: the files
done and the counts so far) after each, and are renamed into place at the end, so ``FILE`` is
always whole. An interrupted run picks up where it stopped when the same command runs again; a
finished one is left alone (``--force`` mines again). Beside ``FILE`` go every removal with its
reason and what it matched (``*.removed.jsonl``) and the counts (``*.stats.json``). Progress goes
to stderr, the summary table (or ``--json``) to stdout.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from pydantic import BaseModel
from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from codestill.progress import RateColumn
from codestill.records import dump_record, read_jsonl, write_json, write_jsonl
from codestill.schemas import SCHEMA_VERSION, Seed

if TYPE_CHECKING:
    from tools.seeds import SeedReport

# tools.seeds (datasketch, scipy, numpy) is imported when the command runs, not when `codestill`
# starts: every other command would pay half a second for it.
BATCH = 256  # tools.seeds.BATCH

app = typer.Typer(no_args_is_help=True, help="SelfCodeAlign seeds: documented, self-contained functions mined "
                                             "from real code.")


class _State(BaseModel):
    """The checkpoint of an unfinished run: which options, which files are done, how many lines of
    the partial seeds and removals files count (lines after them were written after the checkpoint)."""

    fingerprint: dict[str, Any]
    done: list[str]
    seeds: int
    removals: int
    report: dict[str, Any]  # a SeedReport without its removals


class _Run:
    """The files of one ``--out``: the finished ones and the partial ones with their checkpoint."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.removed = out.with_name(out.stem + ".removed.jsonl")
        self.stats = out.with_name(out.stem + ".stats.json")
        self.partial = out.with_name(out.name + ".partial")
        self.partial_removed = out.with_name(self.removed.name + ".partial")
        self.state = out.with_name(out.name + ".partial.json")

    def clear(self) -> None:
        for path in (self.partial, self.partial_removed, self.state):
            path.unlink(missing_ok=True)

    def resume(self, fingerprint: dict[str, Any]) -> tuple[_State, list[Seed]] | None:
        """The checkpoint and the seeds kept so far, when an earlier run with the same options
        stopped; the partial files are cut back to what the checkpoint counts."""
        if not self.state.is_file():
            return None
        try:
            state = _State.model_validate_json(self.state.read_text())
        except (ValueError, OSError):
            return None
        if state.fingerprint != fingerprint or not self.partial.is_file():
            return None
        seeds = _lines(self.partial)
        removed = _lines(self.partial_removed)
        if len(seeds) < state.seeds or len(removed) < state.removals:
            return None
        _rewrite(self.partial, seeds[:state.seeds])
        _rewrite(self.partial_removed, removed[:state.removals])
        return state, list(read_jsonl(self.partial, Seed))

    def checkpoint(self, state: _State, seeds: Sequence[Seed], removals: Sequence[BaseModel]) -> None:
        # Data first, made durable, then the checkpoint that counts it: a crash in between leaves
        # lines the next run cuts off.
        _append(self.partial, seeds)
        _append(self.partial_removed, removals)
        write_json(self.state, state)


def _lines(path: Path) -> list[bytes]:
    """The complete lines of a file we append to (a line cut short by a crash is no line)."""
    if not path.is_file():
        return []
    return [line for line in path.read_bytes().splitlines(keepends=True) if line.endswith(b"\n") and line.strip()]


def _rewrite(path: Path, lines: list[bytes]) -> None:
    with path.open("wb") as f:
        f.writelines(lines)


def _append(path: Path, records: Sequence[BaseModel]) -> None:
    with path.open("a") as f:
        f.writelines(dump_record(r) + "\n" for r in records)
        f.flush()
        os.fsync(f.fileno())


def _table(report: SeedReport, out: Path) -> Table:
    from tools.seeds import FILTERS

    table = Table(title=f"{report.seeds} seeds from {report.functions} functions in {report.files} files",
                  caption=f"-> {out}; type check: {report.typecheck}", box=box.SIMPLE_HEAD, title_justify="left",
                  caption_justify="left")
    table.add_column("filter")
    table.add_column("removed", justify="right")
    for key, label in FILTERS.items():
        if key == "over_limit" and not report.removed.get(key):
            continue
        table.add_row(label, str(report.removed.get(key, 0)))
    table.add_row("[bold]kept[/]", f"[bold]{report.seeds}[/]")
    return table


def _counts(report: SeedReport) -> dict[str, Any]:
    return report.model_dump(exclude={"removals"})


@app.command("mine")
def mine(
    out: Annotated[Path, typer.Option("--out", "-o", help="The seeds file to write (JSONL of Seed records).")],
    paths: Annotated[list[Path] | None, typer.Argument(help="Folders (or .py files) of Python code to mine.")] = None,
    stdlib: Annotated[bool, typer.Option("--stdlib", help="Mine the running interpreter's standard library "
                                                          "(PSF licence; the bundled demo's seeds).")] = False,
    limit: Annotated[int | None, typer.Option(min=1, help="Keep N seeds, the same ones on every run, spread "
                                                          "over modules.")] = None,
    private: Annotated[bool, typer.Option("--private", help="Also consider _private functions.")] = False,
    typecheck: Annotated[bool | None, typer.Option("--typecheck/--no-typecheck", help="Type-check seeds with "
                         "pyright. Default: where one is installed (the dev extra's basedpyright beside the interpreter, or pyright on "
                         "PATH), else skipped (the report says so).")] = None,
    embedding_check: Annotated[bool, typer.Option("--embedding-check", help="Also drop seeds whose embedding is "
                               "close to a benchmark prompt's (bundled all-MiniLM-L6-v2; slow on a CPU).")] = False,
    batch: Annotated[int, typer.Option(min=1, help="Candidates type-checked and checkpointed together.")] = BATCH,
    force: Annotated[bool, typer.Option("--force", help="Mine again even if FILE is complete.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the counts as JSON instead of a table.")] = False,
) -> None:
    """Mine seed functions: documented, self-contained, returning a value, type-checked, clean of
    HumanEval/MBPP, deduplicated. Running it again resumes an interrupted run."""
    from tools.decontam import Decontaminator
    from tools.seeds import SeedMiner, SeedMiningError, SeedReport, seed_sources

    err = Console(stderr=True, highlight=False)
    sources = seed_sources(paths or [], stdlib=stdlib)
    run = _Run(out)
    if force:
        run.clear()
    elif out.exists() and not run.state.exists():
        n = sum(1 for line in out.open("rb") if line.strip())
        err.print(f"{out} is complete ({n} seeds); nothing to do (--force mines again)")
        if as_json:
            print(json.dumps({"out": str(out), "seeds": n, "skipped": True}))
        return
    files = [(path, source) for source in sources for path in source.files()]
    if not files:
        where = ", ".join(str(s.only or s.root) for s in sources)
        raise SeedMiningError(f"no Python files under {where}; give folders that hold .py files")
    out.parent.mkdir(parents=True, exist_ok=True)

    decontaminator = None
    if embedding_check:
        from memory import SentenceTransformerEmbedder

        decontaminator = Decontaminator(embed=SentenceTransformerEmbedder().embed)
    miner = SeedMiner(decontaminator=decontaminator, typecheck=typecheck, private=private)
    fingerprint = {"schema_version": SCHEMA_VERSION, "roots": [str(s.only or s.root) for s in sources],
                   "private": private, "typecheck": miner.report.typecheck, "embedding_check": embedding_check}
    resumed = run.resume(fingerprint)
    done: set[str] = set()
    if resumed is None:
        run.clear()
        miner.report.roots = fingerprint["roots"]
        state = _State(fingerprint=fingerprint, done=[], seeds=0, removals=0, report=_counts(miner.report))
    else:
        state, kept = resumed
        miner.report = SeedReport.model_validate(state.report)
        miner.remember(kept)
        done = set(state.done)
        err.print(f"resuming: {len(done)} of {len(files)} files done, {state.seeds} seeds so far")

    pending: list[Seed] = []
    pending_files: list[str] = []

    def flush() -> None:
        kept = miner.finish(pending)
        new_removals = miner.report.removals
        state.done += pending_files
        state.seeds += len(kept)
        state.removals += len(new_removals)
        miner.report.removals = []
        state.report = _counts(miner.report)
        run.checkpoint(state, kept, new_removals)
        pending.clear()
        pending_files.clear()

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), RateColumn("files"),
               TimeRemainingColumn())
    try:
        with Progress(*columns, console=err, transient=True) as progress:
            task = progress.add_task("mining", total=len(files), completed=len(done))
            for path, source in files:
                if str(path) in done:
                    continue
                pending += miner.from_file(path, source)
                pending_files.append(str(path))
                if len(pending) >= batch:
                    progress.update(task, description="type-checking" if miner.pyright else "deduplicating")
                    flush()
                    progress.update(task, description="mining")
                progress.advance(task)
            flush()
    except KeyboardInterrupt:
        err.print(f"stopped; {state.seeds} seeds so far are kept in {run.partial}: run the same command to go on")
        raise

    seeds = list(read_jsonl(run.partial, Seed))
    report = miner.report
    if limit is not None and len(seeds) > limit:
        seeds = miner.limit(seeds, limit)
        write_jsonl(out, seeds)
        run.partial.unlink()
    else:
        os.replace(run.partial, out)
    with run.partial_removed.open("a") as f:
        f.writelines(dump_record(r) + "\n" for r in report.removals)
    os.replace(run.partial_removed, run.removed)
    settings = {"paths": [str(p) for p in paths or []], "stdlib": stdlib, "limit": limit, "private": private,
                "typecheck": typecheck, "embedding_check": embedding_check, "batch": batch}
    summary = {**_counts(report), "out": str(out), "removed_log": str(run.removed), "settings": settings}
    write_json(run.stats, summary)
    run.state.unlink()
    if as_json:
        print(json.dumps(summary, indent=2))
        return
    Console().print(_table(report, out))
