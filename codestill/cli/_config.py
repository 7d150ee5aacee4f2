"""`codestill config show`: the effective settings, and where each value came from."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from codestill.cli._common import ConfigOpt, SetOpt, parse_sets
from codestill.config import explain_settings

app = typer.Typer(no_args_is_help=True, help="Settings: defaults < codestill.toml < CODESTILL_* env < flags.")


@app.command()
def show(config: ConfigOpt = None, sets: SetOpt = None,
         as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False) -> None:
    """Print every setting, its value and its source (default, file, env or flag). Secrets are masked."""
    rows = explain_settings(config, parse_sets(sets))
    if as_json:
        print(json.dumps([{"key": k, "value": v, "source": s} for k, v, s in rows], indent=1))
        return
    table = Table("setting", "value", "source", box=None)
    for key, value, source in rows:
        table.add_row(key, value, source if source != "default" else "[dim]default[/]")
    Console().print(table)
