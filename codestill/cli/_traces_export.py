"""`codestill traces export RUN... --otlp FILE | --jsonl FILE | --markdown FILE`: runs out of the store.

    codestill traces export 8ded90fc d1a4989c --otlp runs.otlp.jsonl     # for Langfuse, Phoenix, a Collector
    codestill traces export 8ded90fc --markdown run.md                   # paste into a chat when debugging
    codestill traces export 8ded90fc --jsonl spans.jsonl --include-content

Several outputs may be given at once; each is written whole or not at all.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from codestill.cli._common import ConfigOpt, settings_from

_OutOpt = Path | None


def export_command(
        runs: Annotated[list[str], typer.Argument(help="Run ids, unique prefixes, or the short ids `ls` prints.")],
        otlp: Annotated[_OutOpt, typer.Option("--otlp", help="OpenTelemetry spans (OTLP/JSON, GenAI conventions), "
                                                              "one export request per run and line.")] = None,
        jsonl: Annotated[_OutOpt, typer.Option("--jsonl", help="One plain JSON record per span.")] = None,
        markdown: Annotated[_OutOpt, typer.Option("--markdown", help="A readable transcript per run.")] = None,
        include_content: Annotated[bool, typer.Option(
            "--include-content", help="Put prompts, replies and the graph's inputs/outputs into the OTLP and "
                                      "JSONL files (opt-in, as the GenAI conventions say; a transcript has them "
                                      "always).")] = False,
        store: Annotated[Path | None, typer.Option(
            "--store", help="The trace store file; default: the traces.path setting.")] = None,
        config: ConfigOpt = None) -> None:
    """Export runs as OpenTelemetry spans, plain JSONL records, or a Markdown transcript."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from codestill.errors import TraceExportError
    from codestill.traces import TraceStore
    from codestill.traces.export import export_jsonl, export_markdown, export_otlp

    if otlp is None and jsonl is None and markdown is None:
        raise TraceExportError("nothing to export to; give --otlp FILE, --jsonl FILE and/or --markdown FILE.")
    store = store or settings_from(config, None).traces.path
    console = Console(stderr=True, highlight=False)
    with TraceStore(store) as traces:
        ids = list(dict.fromkeys(traces.resolve(r) for r in runs))  # fails fast on a bad id, before any work
        columns = (TextColumn("loading runs"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
        with Progress(*columns, console=console, transient=True) as progress:
            trees = [traces.tree(i) for i in progress.track(ids)]
    written = []
    if otlp is not None:
        written.append(f"{export_otlp(trees, otlp, include_content=include_content)} spans to {otlp} (OTLP/JSON)")
    if jsonl is not None:
        written.append(f"{export_jsonl(trees, jsonl, include_content=include_content)} spans to {jsonl} (JSONL)")
    if markdown is not None:
        written.append(f"{export_markdown(trees, markdown)} transcripts to {markdown} (Markdown)")
    content = "with" if include_content else "without"
    console.print(f"exported {len(trees)} runs {content} message content: " + "; ".join(written))
