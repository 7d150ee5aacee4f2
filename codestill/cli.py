"""The `codestill` command. Errors a user can cause end in one line with the fix, never a traceback."""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from codestill._cli_config import app as config_app
from codestill._cli_demo import demo_command
from codestill._cli_eval import eval_command
from codestill._cli_export import export_command
from codestill._cli_generate import generate_command
from codestill._cli_instruct import evolve_command, instruct_command
from codestill._cli_llm import app as llm_app
from codestill._cli_memory import app as memory_app
from codestill._cli_replay import replay_command
from codestill._cli_sandbox import app as sandbox_app
from codestill._cli_seeds import app as seeds_app
from codestill._cli_sim import app as sim_app
from codestill._cli_solve import chat_command, solve_command
from codestill._cli_traces import app as traces_app
from codestill._cli_train import train as train_cmd
from codestill._cli_ui import ui_command
from codestill.errors import CodestillError
from codestill.runtime import prefer_passive_openmp

app = typer.Typer(
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="codestill: verified code-training data from LLM agents, and small code models trained on it.",
)
app.add_typer(sandbox_app, name="sandbox")
app.add_typer(config_app, name="config")
app.add_typer(llm_app, name="llm")
app.add_typer(sim_app, name="sim")
app.add_typer(traces_app, name="traces")
app.add_typer(memory_app, name="memory")
app.add_typer(seeds_app, name="seeds")
app.command("train")(train_cmd)
app.command("eval")(eval_command)
app.command("solve")(solve_command)
app.command("chat")(chat_command)
app.command("evolve")(evolve_command)
app.command("instruct")(instruct_command)
app.command("generate")(generate_command)
app.command("export")(export_command)
app.command("replay")(replay_command)
app.command("demo")(demo_command)
app.command("ui")(ui_command)


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
