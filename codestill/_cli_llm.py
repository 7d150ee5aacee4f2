"""`codestill llm check`: can this model be reached, and does it answer?"""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from rich.console import Console

from codestill._cli_common import ConfigOpt, SetOpt, settings_from
from codestill.llm import check_model

app = typer.Typer(no_args_is_help=True, help="Chat models: openai:<model>[@<base_url>] or hf:<model>.")


@app.command()
def check(spec: Annotated[str | None, typer.Argument(help="Model spec; default: the llm.model setting.")] = None,
          config: ConfigOpt = None, sets: SetOpt = None) -> None:
    """List what the endpoint serves and make one tiny call; one line with the fix if it fails."""
    settings = settings_from(config, sets, **{"llm.model": spec})
    result = asyncio.run(check_model(settings.llm.model, settings.llm))
    served = f"; serves {', '.join(result.served[:5])}" if result.served else ""
    Console().print(
        f"[green]ok[/]: {result.spec} answered in {result.latency_s:.2f} s "
        f"({result.prompt_tokens} prompt + {result.completion_tokens} completion tokens){served}",
        highlight=False)
