"""`codestill traces ...`: list the runs in a trace store, show one run's span tree, export runs."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from pydantic import TypeAdapter
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.tree import Tree

from codestill.cli._common import ConfigOpt, settings_from
from codestill.cli._traces_export import export_command
from codestill.traces import RunSummary, Span, TraceStore

app = typer.Typer(no_args_is_help=True, help="The trace store: graph runs, their spans and LLM calls.")
StoreOpt = Annotated[Path | None, typer.Option(
    "--store", help="The trace store file; default: the traces.path setting (.codestill/traces.sqlite).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON instead.")]
app.command("export")(export_command)
_STATUS_STYLE = {"ok": "green", "error": "red", "running": "yellow", "unfinished": "magenta"}
_KIND_STYLE = {"graph": "bold", "node": "cyan", "llm": "blue", "tool": "yellow", "retriever": "green"}


def _status(status: str) -> str:
    return f"[{_STATUS_STYLE.get(status, 'white')}]{status}[/]"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 0.01:
        return f"{seconds * 1000:.1f} ms"
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"


def _local(when: datetime) -> str:
    """Local time; the year only when it is not this year's."""
    local = when.astimezone()
    return local.strftime("%m-%d %H:%M:%S" if local.year == datetime.now().year else "%Y-%m-%d %H:%M")


@app.command("ls")
def ls(store: StoreOpt = None,
       limit: Annotated[int, typer.Option(min=1, help="Show the newest N runs.")] = 20,
       as_json: JsonOpt = False, config: ConfigOpt = None) -> None:
    """List the newest runs: id, graph, task, status, duration, tokens, verdict, start time."""
    store = store or settings_from(config, None).traces.path
    with TraceStore(store) as traces:
        runs = traces.list_runs(limit)
    if as_json:
        print(TypeAdapter(list[RunSummary]).dump_json(runs, indent=2).decode())
        return
    # No vertical rules: eight columns must fit an 80-column terminal.
    table = Table(title=f"{len(runs)} newest runs in {store}", box=box.SIMPLE_HEAD,
                  collapse_padding=True, pad_edge=False)
    # Narrow terminals fold the free-text columns; ids, numbers and times stay on one line.
    for column in ("id", "graph", "task", "status", "duration", "tokens", "verdict", "start"):
        free = column in ("graph", "task", "verdict")
        table.add_column(column, no_wrap=not free, overflow="fold" if free else "ellipsis",
                         justify="right" if column in ("duration", "tokens") else "left")
    for r in runs:
        table.add_row(r.short_id, escape(r.graph), escape(r.task_id or "-"), _status(r.status),
                      _duration(r.duration_s), str(r.tokens), escape(r.verdict or "-"), _local(r.start))
    Console().print(table)


def _label(span: Span, parent: Span | None = None) -> str:
    style = _KIND_STYLE.get(span.kind, "white")
    parts = [f"[{style}]{span.kind}[/] {escape(span.name)}"]
    # The node a span ran in, unless the tree already shows it as the parent.
    if span.node and span.node != span.name and (parent is None or parent.name != span.node):
        parts.append(f"[dim]in {escape(span.node)}[/]")
    parts += [_duration(span.duration_s), _status(span.status)]
    if span.kind == "llm":
        parts.append(f"{span.prompt_tokens or 0}+{span.completion_tokens or 0} tokens")
        if span.model:
            parts.append(f"[dim]{escape(span.model)}[/]")
    if span.verdict:
        parts.append(f"verdict {escape(span.verdict)}")
    lines = ["  ".join(parts)]
    if span.kind == "llm":
        lines.append(f"[dim]  > {escape(span.prompt_preview())}[/]")
        lines.append(f"  < {escape(span.response_preview())}")
    if span.error:
        lines.append(f"[red]  {escape(span.error.splitlines()[0][:200])}[/]")
    return "\n".join(lines)


def _grow(node: Tree, span: Span) -> None:
    for child in span.children:
        _grow(node.add(_label(child, span)), child)


@app.command()
def show(run: Annotated[str, typer.Argument(help="Run id, a unique prefix, or the short id `ls` prints.")],
         store: StoreOpt = None, as_json: JsonOpt = False, config: ConfigOpt = None) -> None:
    """Show one run's span tree: kind, name / node, duration, status, tokens, LLM prompt and reply."""
    store = store or settings_from(config, None).traces.path
    with TraceStore(store) as traces:
        tree = traces.tree(run, payloads=True)
    if as_json:
        print(tree.model_dump_json(indent=2))
        return
    root = Tree(_label(tree.root))
    _grow(root, tree.root)
    out = Console()
    out.print(root)
    out.print(f"[dim]{tree.spans} spans, {sum(s.tokens for s in tree.walk())} tokens, "
               f"trace {tree.root.trace_id}[/]", highlight=False)
