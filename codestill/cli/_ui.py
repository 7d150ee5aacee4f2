"""`codestill ui`: the trace viewer, a local web app over one trace store (runs, spans, graph, dashboard).

It serves on 127.0.0.1 unless ``--host`` says otherwise: traces hold prompts and code, so listening
on another address is the user's explicit choice and gets a warning. Heavy imports (uvicorn, the
graphs, the app) happen inside the command, so ``codestill --help`` stays fast.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import webbrowser
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from codestill.cli._common import ConfigOpt, settings_from
from codestill.errors import TraceStoreError, ViewerError

if TYPE_CHECKING:
    from codestill.traces.viewer import RunIndex

# Root span names of the compiled graphs in langgraph.json, and the module that holds each as `graph`.
GRAPH_MODULES = {"solve": "graphs.solve", "evol": "graphs.evol", "selfalign": "graphs.selfalign"}
_err = Console(stderr=True)


def compiled_graph(name: str) -> Any:
    """The drawable compiled graph (subgraphs expanded) for a root span named ``name``, or None."""
    import importlib

    module = GRAPH_MODULES.get(name)
    if module is None:
        return None
    return importlib.import_module(module).build_graph().get_graph(xray=1)


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_port(host: str, port: int) -> None:
    """Fail with one line before the server starts when the address cannot be bound."""
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((host, port))
    except OSError as e:
        raise ViewerError(f"cannot serve on {host}:{port} ({e.strerror}); pick another --port, or stop "
                          "what is using it.") from None


def _build_index(index: RunIndex) -> None:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from codestill.progress import RateColumn

    todo = index.pending()
    if todo < 500:
        index.refresh(force=True)
        return
    with Progress(TextColumn("indexing runs"), BarColumn(), MofNCompleteColumn(), RateColumn("runs"),
                  TimeElapsedColumn(), console=_err) as bar:
        task = bar.add_task("index", total=todo)
        index.refresh(lambda done, total: bar.update(task, completed=done, total=total), force=True)


def ui_command(
    traces: Annotated[Path | None, typer.Option(
        "--traces", help="Trace store to view; default: the newest runs/<name>/traces.sqlite, else the "
                         "traces.path setting.")] = None,
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to serve on.")] = 8765,
    host: Annotated[str, typer.Option(
        help="Address to listen on. Anything but loopback exposes prompts and code to the network.")] = "127.0.0.1",
    no_open: Annotated[bool, typer.Option("--no-open", help="Do not open a browser.")] = False,
    config: ConfigOpt = None,
) -> None:
    """Browse a trace store in the browser: runs, spans, LLM calls, attempts, the graph, a dashboard."""
    import uvicorn

    from codestill.traces.viewer import RunIndex, create_app, latest_store

    settings = settings_from(config, None)
    store = traces or latest_store(settings.runs_dir, settings.traces.path)
    if not _loopback(host):
        _err.print(f"[bold yellow]warning:[/] serving on {host}: anyone who can reach this address can read "
                   "every prompt and every piece of code in these traces.", highlight=False)
    if not store.exists():
        raise TraceStoreError(f"no trace store at {store}; run a traced graph (or `codestill generate`) first, "
                              "or pass --traces PATH.")
    index = RunIndex(store)  # a foreign or unreadable store fails here, before anything is written
    try:
        _check_port(host, port)
        _build_index(index)
        app = create_app(store, index=index, graphs=compiled_graph)
        shown = f"[{host}]" if ":" in host else host
        url = f"http://{shown}:{port}/"
        _err.print(f"codestill ui: {store} at {url} (index {index.path}); Ctrl-C stops it", highlight=False)
        if not no_open:
            threading.Timer(1.0, webbrowser.open, args=(url,)).start()
        uvicorn.run(app, host=host, port=port, log_level="warning")
    finally:
        index.close()
