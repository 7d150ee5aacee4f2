"""Asking a person what a paused session waits for: the plans (accept / edit / regenerate) and the
accepted code (accept / reject). Plain typed lines, so a terminal, a script or pexpect can answer.

Each ``ask_*`` turns an interrupt payload into the graph's resume value (see ``graphs/solve.py``).
They block on ``input``: call them while no event loop runs, so Ctrl-C is an ordinary KeyboardInterrupt.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.prompt import IntPrompt, Prompt

from codestill.cli._session_render import code_block, print_plans
from codestill.schemas import Plan


def ask(console: Console, payload: dict[str, Any]) -> dict[str, Any]:
    kind = payload.get("kind")
    if kind == "plans":
        return ask_plans(console, payload)
    if kind == "accept":
        return ask_accept(console, payload)
    raise ValueError(f"unknown interrupt {kind!r}")


def _steps(console: Console) -> list[str]:
    console.print("Type the new steps, one per line; an empty line ends them (none: keep the plan).")
    steps: list[str] = []
    while True:
        line = console.input(f"  step {len(steps) + 1}: ").strip()
        if not line:
            return steps
        steps.append(line)


def ask_plans(console: Console, payload: dict[str, Any]) -> dict[str, Any]:
    plans = [Plan.model_validate(p) for p in payload.get("plans", [])]
    console.print("[bold]Review the plan" + ("s" if len(plans) > 1 else "") + " before the agents write code:[/]")
    print_plans(console, plans)
    while True:
        choice = Prompt.ask(escape("[a]ccept / [e]dit / [r]egenerate"), choices=["a", "e", "r"], default="a",
                            console=console)
        if choice == "a":
            return {"action": "accept"}
        if choice == "r":
            feedback = Prompt.ask("What should the planner do differently? (empty: just try again)",
                                  default="", show_default=False, console=console)
            return {"action": "regenerate", "feedback": feedback.strip() or None}
        which = 1
        if len(plans) > 1:
            which = IntPrompt.ask(f"Edit which plan (1-{len(plans)})", choices=[str(i) for i in
                                                                               range(1, len(plans) + 1)],
                                  default=1, console=console)
        steps = _steps(console)
        if not steps:
            continue
        edited = [p.model_dump(mode="json") for p in plans]
        edited[which - 1] = Plan(steps=tuple(steps), rationale="", kind="forward").model_dump(mode="json")
        return {"action": "edit", "plans": edited}


def ask_accept(console: Console, payload: dict[str, Any]) -> dict[str, Any]:
    console.print("[bold]The tests pass and the critic accepts this code:[/]")
    console.print(code_block(str(payload.get("code") or "")))
    if payload.get("reason"):
        console.print(f"[dim]{escape(str(payload['reason']))}[/]")
    choice = Prompt.ask(escape("[a]ccept / [r]eject"), choices=["a", "r"], default="a", console=console)
    if choice == "a":
        return {"action": "accept"}
    reason = Prompt.ask("Why? (one line, optional)", default="", show_default=False, console=console)
    return {"action": "reject", "reason": reason.strip()}
