"""The coder: a direct draft, then the final response by AMR-Evol's adaptive response evolution.

``write`` shows the modules the memory retrieved for the decomposer's specs as *reference functions*
(code, signature, similarity score); the model reuses, adapts or ignores each and says which in
``references``. The response must stand on its own as training data, so the prompt forbids any
mention of the memory or of reference functions, and ``leaks_memory`` checks that it obeyed.
What was really reused is decided from the code (``reference_uses``), not from the model's claim.

A program task (``agents._common.is_program``) gets the program rules (``prompts/coder_program.md``)
after its task: a whole script that reads stdin and prints, in place of the system prompt's "no input(),
no printing".

A repair is the same call with ``previous_code`` and ``feedback`` (the critic's issues and the
sandbox result's ``feedback()`` text, whose ``status: <status>`` line marks the request a repair).
Coder prompts never contain a line ``module: <name>``: that asks for one module alone.
"""

from __future__ import annotations

import ast
from collections.abc import Sequence
from typing import Literal

from langchain_core.language_models import BaseChatModel
from langchain_core.runnables import RunnableConfig

from agents._answers import CoderAnswer
from agents._common import call, is_program, plan_text, task_section
from agents._prompts import fenced, render
from codestill.pysrc import parse_quietly
from codestill.schemas import MemoryHit, Plan, Task
from codestill.structured import Method, Reply
from tools.code import normalized_hash, same_code, skeleton_hash
from tools.leaks import leaks_memory, usable_explanation

__all__ = ["draft", "explain", "leaks_memory", "reference_uses", "same_code", "top_level_functions",
           "usable_explanation", "write"]

Use = Literal["reused", "adapted", "ignored"]


def _sample(sample: int) -> str:
    """The line that makes sample k > 0 a request of its own (a cached or seeded server would otherwise
    answer every independent sample with the first one's reply); sample 0 asks as a single sample does."""
    return "\n\n" + render("coder_sample", sample=str(sample + 1)) if sample else ""


async def draft(model: BaseChatModel, task: Task, plan: Plan, *, sample: int = 0, config: RunnableConfig | None = None,
                method: Method = "auto", repair_rounds: int = 1, max_tokens: int | None = None) -> Reply[CoderAnswer]:
    """A direct response to ``task`` following ``plan`` (what the decomposer decomposes); ``sample``
    numbers independent samples of one plan (``solve.samples``)."""
    user = render("coder_draft_user", task=_task(task), plan=plan_text(plan)) + _sample(sample)
    return await call(model, "coder", user, CoderAnswer, config=config, method=method,
                      repair_rounds=repair_rounds, max_tokens=max_tokens)


async def write(model: BaseChatModel, task: Task, plan: Plan, hits: Sequence[MemoryHit], *,
                previous_code: str | None = None, feedback: str | None = None, sample: int = 0,
                config: RunnableConfig | None = None, method: Method = "auto",
                repair_rounds: int = 1, max_tokens: int | None = None) -> Reply[CoderAnswer]:
    """The final response: ``plan`` evolved with the retrieved ``hits``; a repair with ``feedback``."""
    references = "\n\n".join(_reference(h) for h in hits)
    parts = [render("coder_references", references=references)] if hits else []
    if previous_code is not None or feedback:
        parts.append(render("coder_repair", code=fenced(previous_code or "(no code was produced)"),
                            feedback=(feedback or "").strip() or "(no details were given)"))
    extra = "".join("\n\n" + p for p in parts)
    user = render("coder_user", task=_task(task), plan=plan_text(plan), extra=_sample(sample) + extra)
    return await call(model, "coder", user, CoderAnswer, config=config, method=method,
                      repair_rounds=repair_rounds, max_tokens=max_tokens)


async def explain(model: BaseChatModel, task: Task, code: str, *, config: RunnableConfig | None = None,
                  method: Method = "auto", repair_rounds: int = 1, max_tokens: int | None = None) -> Reply[CoderAnswer]:
    """The coder asked afterwards to explain accepted ``code`` whose own reply had no usable explanation
    (see ``usable_explanation``). The answer is the program and its explanation, as always: the caller
    keeps the explanation only if the program came back unchanged (``same_code``), so that the text
    explains the code that was verified and not one the model wrote instead."""
    user = render("coder_explain_user", task=task_section(task), code=fenced(code))
    return await call(model, "coder", user, CoderAnswer, config=config, method=method,
                      repair_rounds=repair_rounds, max_tokens=max_tokens)


def _task(task: Task) -> str:
    """The task as the coder sees it: with the program rules when it asks for a program."""
    section = task_section(task)
    return f"{section}\n\n{render('coder_program')}" if is_program(task) else section


def _reference(hit: MemoryHit) -> str:
    m = hit.module
    about = m.description or m.docstring
    head = f"### `{m.name}` (similarity {hit.score:.2f}, found for the part `{hit.spec_name}`)"
    return "\n".join([head, f"Signature: `{m.signature}`", *([about.strip()] if about.strip() else []),
                      fenced(m.code)])


def top_level_functions(code: str) -> dict[str, str]:
    """Name -> source (decorators included) of each top-level function; empty if ``code`` does not parse."""
    try:
        tree = parse_quietly(code)
    except (SyntaxError, ValueError):
        return {}
    lines = code.splitlines()
    out: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno is not None:
            start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            out[node.name] = "\n".join(lines[start - 1:node.end_lineno])
    return out


def reference_uses(code: str, hits: Sequence[MemoryHit]) -> dict[str, Use]:
    """How the final ``code`` used each hit, keyed by ``StoredModule.id``, judged from the code:

    reused   a top-level function with the module's name and the same normalised AST (formatting,
             comments, docstrings and local names aside);
    adapted  a top-level function with that name but other code, the module's code under another
             name (same skeleton hash), or a call to the module's name;
    ignored  none of these.
    """
    fns = top_level_functions(code)
    mine = {name: _hashes(src) for name, src in fns.items()}
    called = _called_names(code)
    uses: dict[str, Use] = {}
    for hit in hits:
        m = hit.module
        theirs = _hashes(top_level_functions(m.code).get(m.name, m.code))
        if m.name in mine:
            ours = mine[m.name]
            same = theirs is not None and ours is not None and ours[0] == theirs[0]
            uses[m.id] = "reused" if same else "adapted"
        elif m.name in called or (theirs is not None and any(h is not None and h[1] == theirs[1]
                                                               for h in mine.values())):
            uses[m.id] = "adapted"
        else:
            uses[m.id] = "ignored"
    return uses


def _hashes(source: str) -> tuple[str, str] | None:
    """(normalized_hash, skeleton_hash) of ``source``, or None if it does not parse."""
    try:
        return normalized_hash(source), skeleton_hash(source)
    except (SyntaxError, ValueError):
        return None


def _called_names(code: str) -> set[str]:
    try:
        tree = parse_quietly(code)
    except (SyntaxError, ValueError):
        return set()
    calls = (n.func for n in ast.walk(tree) if isinstance(n, ast.Call))
    return {f.id if isinstance(f, ast.Name) else f.attr for f in calls if isinstance(f, ast.Name | ast.Attribute)}
