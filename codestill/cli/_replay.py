"""`codestill replay RUN`: re-run a recorded solve run with its LLM answers taken from the trace.

    codestill replay 8ded90fc                 # the short id `codestill traces ls` prints
    codestill replay 8ded90fc --set solve.max_repairs=1

No model server is needed: each agent's request is answered from the recording (matched by node
and messages), memory searches from what the recorded run retrieved, and the sandbox runs for real.
The replay is traced as a run of its own (into the same store unless --out-store), then the two
runs' verdicts, reasons and routes are printed side by side. A request the recording lacks (a
changed prompt, a new call) stops the replay with the node and the start of that prompt.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from codestill.cli._common import ConfigOpt, SetOpt, settings_from

if TYPE_CHECKING:
    from codestill.traces.replay import Comparison

StoreOpt = Annotated[Path | None, typer.Option(
    "--store", help="The trace store holding the run; default: the traces.path setting.")]
OutStoreOpt = Annotated[Path | None, typer.Option(
    "--out-store", help="Where the replay's own trace goes; default: the same store, beside the original.")]
StructuredOpt = Annotated[str | None, typer.Option(
    "--structured", help="How the agents ask for structured replies (tools | json_schema | prompt); default: "
                         "what the recorded run used.")]


def replay_command(
        run: Annotated[str, typer.Argument(help="Run id, a unique prefix, or the short id `traces ls` prints.")],
        store: StoreOpt = None, out_store: OutStoreOpt = None, structured: StructuredOpt = None,
        as_json: Annotated[bool, typer.Option("--json", help="Print the comparison as JSON.")] = False,
        config: ConfigOpt = None, sets: SetOpt = None) -> None:
    """Replay a recorded solve run without a model server and show what changed.

    Exit status 0 when the replay reaches the recorded verdict, 1 when it reaches another."""
    from codestill.traces import TraceStore
    from codestill.traces.replay import Recording, ReplayError, compare

    settings = settings_from(config, sets)
    store = store or settings.traces.path
    if structured is not None and structured not in ("tools", "json_schema", "prompt"):
        raise ReplayError(f"--structured {structured!r}: use tools, json_schema or prompt.")
    with TraceStore(store) as traces:
        original = traces.tree(run)
    recording = Recording.from_tree(original)
    out = out_store or store
    console = Console(stderr=as_json, highlight=False)
    with console.status(f"replaying run {recording.run_id[-8:]} ({recording.task.id}): sandbox runs are real"):
        replay_id = asyncio.run(_replay(recording, settings, out, structured))
    with TraceStore(out) as traces:
        comparison = compare(original, traces.tree(replay_id))
    if as_json:
        import json
        from dataclasses import asdict

        print(json.dumps({"original": recording.run_id, "replay": replay_id, **asdict(comparison),
                          "same": comparison.same}, indent=2))
    else:
        _show(console, recording.run_id, replay_id, comparison)
    raise typer.Exit(0 if comparison.original_verdict == comparison.replayed_verdict else 1)


async def _replay(recording: Any, settings: Any, out: Path, structured: str | None) -> str:
    """Run the replay under a tracer of its own; returns the replay's run id."""
    from codestill.run import open_deps
    from codestill.run._replay import run_replay
    from codestill.traces import SqliteTracer

    with SqliteTracer(out) as tracer:
        async with open_deps(settings, "replay", recording=recording, structured=structured) as deps:
            assert deps.solve is not None
            try:
                replayed = await run_replay(recording, deps.solve, callbacks=[tracer])
            finally:
                tracer.flush()  # a stopped replay's spans are kept: its trace shows how far it got
    return replayed.run_id


def _show(console: Console, original: str, replayed: str, c: Comparison) -> None:
    table = Table(title="original vs replay", show_header=True, header_style="bold")
    table.add_column("")
    table.add_column(f"original {original[-8:]}", overflow="fold")
    table.add_column(f"replay {replayed[-8:]}", overflow="fold")
    table.add_row("verdict", escape(str(c.original_verdict)), escape(str(c.replayed_verdict)))
    table.add_row("reason", escape(str(c.original_reason)), escape(str(c.replayed_reason)))
    console.print(table)
    if not c.route_diff:
        console.print(f"[green]same route[/] ({len(c.original_route)} steps)")
    else:
        console.print("[bold]the routes differ[/] ([red]- original[/], [green]+ replay[/]):")
        for line in c.route_diff:
            style = {"-": "red", "+": "green"}.get(line[:1], "dim")
            console.print(f"[{style}]{escape(line)}[/]")
    verdict = "same verdict" if c.original_verdict == c.replayed_verdict else "[bold red]verdict changed[/]"
    console.print(f"{verdict}; compare the two with `codestill traces show {original[-8:]}` and "
                  f"`codestill traces show {replayed[-8:]}`")
