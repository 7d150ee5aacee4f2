"""The `codestill` command. Errors a user can cause end in one line with the fix, never a traceback."""

from __future__ import annotations

import importlib
import sys
from typing import Any

import typer
import typer.main
from rich.console import Console
from typer.core import TyperGroup

from codestill.errors import CodestillError
from codestill.runtime import prefer_passive_openmp

# Each command's module, imported when that command runs (or when the help lists them all): a command
# loads its own dependencies and no other command's (`codestill instruct` loads no sandbox client, UI
# or trainer), which is most of a short command's start-up.
_COMMANDS: dict[str, str] = {
    "sandbox": "codestill.cli._sandbox:app",
    "config": "codestill.cli._config:app",
    "llm": "codestill.cli._llm:app",
    "models": "codestill.cli._models:app",
    "sim": "codestill.sim._command:app",
    "traces": "codestill.cli._traces:app",
    "memory": "codestill.cli._memory:app",
    "seeds": "codestill.cli._seeds:app",
    "train": "codestill.cli._train:train",
    "eval": "codestill.cli._eval:eval_command",
    "solve": "codestill.cli._solve:solve_command",
    "chat": "codestill.cli._solve:chat_command",
    "evolve": "codestill.cli._instruct:evolve_command",
    "instruct": "codestill.cli._instruct:instruct_command",
    "generate": "codestill.cli._generate:generate_command",
    "export": "codestill.cli._export:export_command",
    "replay": "codestill.cli._replay:replay_command",
    "demo": "codestill.cli._demo:demo_command",
    "ui": "codestill.cli._ui:ui_command",
}


class _Commands(TyperGroup):
    """The root command, whose subcommands are built from ``_COMMANDS`` when asked for."""

    def list_commands(self, ctx: Any) -> list[str]:
        return list(_COMMANDS)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name not in _COMMANDS:
            return None
        module, _, attr = _COMMANDS[cmd_name].partition(":")
        target = getattr(importlib.import_module(module), attr)
        if isinstance(target, typer.Typer):
            command: Any = typer.main.get_group(target)
        else:
            single = typer.Typer(add_completion=False)
            single.command(cmd_name)(target)
            command = typer.main.get_command(single)
        command.name = cmd_name
        return command


app = typer.Typer(
    cls=_Commands,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="codestill: verified code-training data from LLM agents, and small code models trained on it.",
)


@app.callback()
def _root() -> None:
    # A callback makes the app a group of commands, though none is registered with Typer itself.
    pass


def main() -> None:
    prefer_passive_openmp()
    try:
        app()
    except CodestillError as e:
        Console(stderr=True).print(f"[bold red]error:[/] {e}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        Console(stderr=True).print("interrupted")
        sys.exit(130)
