"""`codestill memory ...`: look into the function-module memory, search it, move it between stores."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Annotated

import typer
from pydantic import TypeAdapter
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.syntax import Syntax
from rich.table import Table

from codestill.cli._common import ConfigOpt, SetOpt, settings_from
from codestill.errors import MemoryStoreError
from codestill.records import read_jsonl, write_jsonl
from codestill.schemas import MemoryHit, StoredModule

app = typer.Typer(no_args_is_help=True, help="The function-module memory: verified helper functions in Chroma.")
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON instead.")]
PathOpt = Annotated[Path | None, typer.Option("--path", help="Embedded store folder (memory.path).")]
UrlOpt = Annotated[str | None, typer.Option("--url", help="A Chroma server, http://HOST:PORT (memory.url).")]


def _open(config: Path | None, sets: list[str] | None, path: Path | None, url: str | None, create: bool = False):
    from memory import ModuleMemory

    settings = settings_from(config, sets, **{"memory.path": path, "memory.url": url})
    return ModuleMemory(settings.memory, create=create)


def _short(text: str, n: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


def _print_json(value: object) -> None:
    print(json.dumps(value, indent=2, default=str))


@app.command("stats")
def stats(as_json: JsonOpt = False, path: PathOpt = None, url: UrlOpt = None, config: ConfigOpt = None,
          sets: SetOpt = None) -> None:
    """How many modules, how often they were added, retrieved and reused."""
    with _open(config, sets, path, url) as memory:
        s = memory.stats()
    if as_json:
        _print_json(dataclasses.asdict(s))
        return
    table = Table(box=box.SIMPLE, show_header=False)
    for key, value in dataclasses.asdict(s).items():
        table.add_row(key.replace("_", " "), escape(str(value)))
    Console().print(table)


def _module_table(title: str, rows: list[tuple[StoredModule, float | None]]) -> Table:
    table = Table(title=title, box=box.SIMPLE_HEAD, collapse_padding=True, pad_edge=False)
    with_score = any(score is not None for _, score in rows)
    columns = ["id", *(["score"] if with_score else []), "signature", "retrieved", "reused"]
    for column in columns:
        table.add_column(column, no_wrap=column != "signature", overflow="fold",
                         justify="right" if column in ("score", "retrieved", "reused") else "left")
    for m, score in rows:
        cells = [m.id[:12], *([f"{score:.3f}"] if with_score else []), escape(_short(m.signature)),
                 str(m.times_retrieved), str(m.times_reused)]
        table.add_row(*cells)
    return table


@app.command("ls")
def ls(limit: Annotated[int, typer.Option(min=1, help="Show at most N modules.")] = 50,
       as_json: JsonOpt = False, path: PathOpt = None, url: UrlOpt = None, config: ConfigOpt = None,
       sets: SetOpt = None) -> None:
    """List stored modules: id, signature, times retrieved and reused."""
    with _open(config, sets, path, url) as memory:
        rows, total = [], len(memory)
        for m in memory.iter_all():
            if len(rows) == limit:
                break
            rows.append(m)
    if as_json:
        print(TypeAdapter(list[StoredModule]).dump_json(rows, indent=2).decode())
        return
    Console().print(_module_table(f"{len(rows)} of {total} modules", [(m, None) for m in rows]))


@app.command("search")
def search(query: Annotated[str, typer.Argument(help="What the function should do, in words.")],
           k: Annotated[int, typer.Option("-k", min=1, help="How many results.")] = 5,
           min_score: Annotated[float, typer.Option(min=0, max=1, help="Least similarity shown.")] = 0.0,
           as_json: JsonOpt = False, path: PathOpt = None, url: UrlOpt = None, config: ConfigOpt = None,
           sets: SetOpt = None) -> None:
    """Find modules by meaning (nothing is counted as retrieved)."""
    with _open(config, sets, path, url) as memory:
        hits = memory.search_text(query, k=k, min_score=min_score)
    if as_json:
        print(TypeAdapter(list[MemoryHit]).dump_json(hits, indent=2).decode())
        return
    Console().print(_module_table(f"best {len(hits)} for {_short(query, 40)!r}",
                                  [(h.module, h.score) for h in hits]))


def _find(memory, id_prefix: str) -> StoredModule:
    found = memory.get(id_prefix)
    if found is None:
        matches = [m for m in memory.iter_all() if m.id.startswith(id_prefix)]
        if len(matches) != 1:
            why = "no module" if not matches else f"{len(matches)} modules"
            raise MemoryStoreError(f"{why} with id {id_prefix!r} in {memory.where}; "
                                   "`codestill memory ls` lists the ids")
        found = matches[0]
    return found


@app.command("show")
def show(id_: Annotated[str, typer.Argument(metavar="ID", help="A module id (or a unique prefix).")],
         as_json: JsonOpt = False, path: PathOpt = None, url: UrlOpt = None, config: ConfigOpt = None,
         sets: SetOpt = None) -> None:
    """One module: its code, tests, provenance and counts."""
    with _open(config, sets, path, url) as memory:
        m = _find(memory, id_)
    if as_json:
        print(m.model_dump_json(indent=2))
        return
    console = Console()
    console.print(f"[bold]{escape(m.signature)}[/]  [dim]{m.id}[/]")
    if m.description:
        console.print(escape(m.description))
    v = m.verification
    console.print(f"verified: {m.verified}" + (f" (run {v.run_id}, {v.tests_passed}/{v.tests_total} tests)" if v else "")
                  + f"   from: task {m.task_id or '-'}, trajectory {m.trajectory_id or '-'}")
    console.print(f"added {m.times_added}x, retrieved {m.times_retrieved}x, reused {m.times_reused}x, "
                  f"created {m.created_at:%Y-%m-%d %H:%M} UTC")
    console.print(Syntax(m.code, "python", line_numbers=False))
    if m.tests is not None and m.tests.code:
        console.print("[bold]tests[/]")
        console.print(Syntax(m.tests.code, "python"))


@app.command("export")
def export(file: Annotated[Path, typer.Argument(help="The JSONL file to write (replaced atomically).")],
           path: PathOpt = None, url: UrlOpt = None, config: ConfigOpt = None, sets: SetOpt = None) -> None:
    """Write every module, with its counts, as StoredModule JSONL records."""
    with _open(config, sets, path, url) as memory:
        n = write_jsonl(file, memory.iter_all())
    Console(stderr=True).print(f"exported {n} modules to {file}")


@app.command("import")
def import_(file: Annotated[Path, typer.Argument(help="A JSONL file that `codestill memory export` wrote.")],
            path: PathOpt = None, url: UrlOpt = None, config: ConfigOpt = None, sets: SetOpt = None,
            as_json: JsonOpt = False) -> None:
    """Add the modules of an export; duplicates merge their counts into the stored records."""
    # Read (and so validate) the whole file first: a malformed line must not leave half an import.
    records = list(read_jsonl(file, StoredModule))
    counts: dict[str, int] = {}
    columns = (TextColumn("importing"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with _open(config, sets, path, url, create=True) as memory, \
            Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task("import", total=len(records))
        for start in range(0, len(records), 256):
            batch = records[start:start + 256]
            for r in memory.add_many(batch):
                counts[r.status] = counts.get(r.status, 0) + 1
            progress.advance(task, len(batch))
        total = len(memory)
    if as_json:
        _print_json({"read": len(records), **counts, "records": total})
        return
    parts = ", ".join(f"{n} {status.replace('_', ' ')}" for status, n in sorted(counts.items()))
    Console(stderr=True).print(f"imported {len(records)} modules from {file}: {parts or 'nothing'}; "
                               f"the memory now holds {total}")


@app.command("rm")
def rm(id_: Annotated[str, typer.Argument(metavar="ID", help="A module id (or a unique prefix).")],
       path: PathOpt = None, url: UrlOpt = None, config: ConfigOpt = None, sets: SetOpt = None) -> None:
    """Remove one module."""
    with _open(config, sets, path, url) as memory:
        m = _find(memory, id_)
        memory.remove(m.id)
    Console(stderr=True).print(f"removed {m.id} ({escape(m.signature)})")
