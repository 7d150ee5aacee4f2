"""`codestill llm check`: can this model be reached, does it answer, and how does it give structured replies?"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape

from codestill.cli._common import ConfigOpt, SetOpt, settings_from
from codestill.llm import check_model

if TYPE_CHECKING:
    from codestill.config import LLMConfig
    from codestill.llm import CheckResult

app = typer.Typer(no_args_is_help=True, help="Chat models: openai:<model>[@<base_url>] or hf:<model>.")

SLOW_S = 10.0  # a tiny call slower than this is a slow local server: say which settings fit it


@app.command()
def check(spec: Annotated[str | None, typer.Argument(help="Model spec; default: the llm.model setting.")] = None,
          config: ConfigOpt = None, sets: SetOpt = None) -> None:
    """List what the endpoint serves, make one tiny call, and find out which structured method works;
    one line with the fix if it fails."""
    settings = settings_from(config, sets, **{"llm.model": spec})
    result = asyncio.run(check_model(settings.llm.model, settings.llm))
    Console(highlight=False).print("\n".join(report(result, settings.llm)), soft_wrap=True)


def report(result: CheckResult, llm: LLMConfig) -> list[str]:
    """The check's lines (rich markup; whatever the server sent is escaped)."""
    served = f"; serves {escape(', '.join(result.served[:5]))}" if result.served else ""
    usage = (f"{result.prompt_tokens} prompt + {result.completion_tokens} completion tokens"
             if result.prompt_tokens or result.completion_tokens else "the server reported no usage")
    finish = f", finish_reason {escape(result.finish_reason)}" if result.finish_reason else ""
    text = result.reply.replace("\n", "\\n")
    lines = [f"[green]ok[/]: {escape(result.spec)} answered in {result.latency_s:.2f} s ({usage}{finish}){served}",
             f"reply: {escape(text) if text.strip() else '[yellow](empty)[/]'}"]
    if result.latency_s > SLOW_S:
        lines.append(f"[yellow]slow[/]: a tiny call took {result.latency_s:.0f} s; for a slow local server raise "
                     f"llm.timeout_s (now {llm.timeout_s:g} s) and lower llm.max_tokens (now {llm.max_tokens}) so "
                     "that a whole reply fits in the timeout")
    cap = result.capability
    if cap is None:
        return lines
    lines.append("structured replies:")
    lines += [f"  {escape(note)}" for note in cap.notes]
    lines.append(f"use: llm.structured={cap.method} (auto picks it)")
    if _fails(llm.structured, cap.method):
        lines.append(f"[yellow]llm.structured={llm.structured} is set[/]: that method does not work with this "
                     f"server; set it to {cap.method} or auto")
    return lines


def _fails(setting: str, found: str) -> bool:
    """Did the probe see ``setting`` fail? The probe tries tools, then json_schema, and stops at the first
    that works; "prompt" works everywhere."""
    order = ("tools", "json_schema", "prompt")
    return setting in order[:2] and order.index(setting) < order.index(found)
