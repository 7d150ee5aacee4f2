"""The tester (SelfCodeAlign): assert-based tests written for a solution and each of its new modules,
with expected values worked out from the task, not from the code under test.

A program task (``agents._common.is_program``) gets stdin/stdout cases instead (``IOTestsAnswer``:
"Input:"/"Output:" fenced pairs, ``prompts/tester_program.md``); its helper modules are not listed,
since a case can only run the whole script.

The task's own tests are shown as examples when they are visible; hidden tests never enter a prompt.
``suites`` turns what was written into what the sandbox runs: the visible suite and the hidden one.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Sequence

from langchain_core.language_models import BaseChatModel
from langchain_core.runnables import RunnableConfig

from agents._answers import IOTestsAnswer, TestsAnswer
from agents._common import call, is_program, task_section, visible_tests
from agents._prompts import fenced, render
from codestill.pysrc import parse_quietly
from codestill.schemas import IOCase, ModuleSpec, Task, TestSuite
from codestill.structured import Method, Reply


async def write_tests(model: BaseChatModel, task: Task, code: str | None, modules: Sequence[ModuleSpec] = (), *,
                      why: str | None = None, previous: str | None = None, sample: int = 1,
                      config: RunnableConfig | None = None, method: Method = "auto",
                      repair_rounds: int = 1,
                      max_tokens: int | None = None) -> Reply[TestsAnswer] | Reply[IOTestsAnswer]:
    """Tests for ``code`` (a solution to ``task``) and for each of ``modules``. ``code=None`` asks
    blind, from the task alone: a second sample that cannot copy the code's answers, so that a wrong
    value shared by the code and the first suite shows as a disagreement (CodeT's dual agreement);
    ``sample`` numbers such samples, so that each is a fresh one.
    Asked again, the tester is told ``why`` (its suite did not run, was refused, let mutants live, or
    failed against the code) and shown its ``previous`` tests. A program task's answer is an
    ``IOTestsAnswer``, every other's a ``TestsAnswer``."""
    program = is_program(task)
    listed = "\n".join(f"- `{m.signature}`" + (f": {m.description}" if m.description else "") for m in modules)
    if program:
        extra = "\n\n" + render("tester_program")
    else:
        extra = "\n\n" + render("tester_modules", modules=listed) if modules else ""
    if why:
        extra += "\n\n" + render("tester_again", why=why.strip(), previous=fenced(previous or "(none)", ""))
    if code is None:
        user = render("tester_blind_user", task=task_section(task), modules=extra, sample=str(sample))
    else:
        user = render("tester_user", task=task_section(task), code=fenced(code), modules=extra)
    if program:
        return await call(model, "tester", user, IOTestsAnswer, config=config, method=method,
                          repair_rounds=repair_rounds, max_tokens=max_tokens)
    return await call(model, "tester", user, TestsAnswer, config=config, method=method,
                      repair_rounds=repair_rounds, max_tokens=max_tokens)


def suites(task: Task, written: TestsAnswer | IOTestsAnswer | None) -> tuple[TestSuite, TestSuite | None]:
    """(visible suite, hidden suite or None) for the sandbox.

    The visible suite is the written tests followed by the task's tests when they are not hidden.
    A HumanEval-style suite (``def check(candidate)`` run as ``check(entry_point)``) cannot simply be
    concatenated with another: the sandbox appends a single ``check(entry_point)`` after *all* the
    code, so a second ``check`` definition would replace the first. Each such suite is therefore made
    explicit first: its ``check(<entry_point>)`` call is written right after its code and the merged
    suite has no ``entry_point``, so every ``check`` runs, in order, as a test of its own. The task's
    tests are also what a written ``check`` would be checked against, so both stay.

    The hidden suite is the task's tests, unchanged, when they are hidden; else None.

    A program task's visible suite is an io suite: the written cases, then the task's own io cases when
    they are not hidden (a case written twice is run once); visible asserts given with a program task
    cannot share a run with its cases and are not run. With no case at all it is the empty asserts
    suite a task without anything written gets, which the gates refuse (an io suite needs a case).
    """
    if is_program(task):
        return _io_suite(task, written), _hidden(task)
    entry = task.entry_point or (written.entry_point if written is not None else None)
    parts: list[str] = []
    if written is not None and written.tests.strip():
        parts.append(_explicit(TestSuite(code=written.tests, entry_point=written.entry_point or entry)))
    shown = visible_tests(task)
    if shown is not None and shown.kind == "asserts" and shown.code.strip():
        parts.append(_explicit(shown))
    code = "\n\n".join(p.strip("\n") for p in parts if p.strip())
    visible = TestSuite(kind="asserts", code=code + "\n" if code else "",
                        entry_point=None if _defines_check(code) else entry)
    return visible, _hidden(task)


def _hidden(task: Task) -> TestSuite | None:
    return task.tests if task.tests is not None and task.hidden_tests else None


def _io_suite(task: Task, written: TestsAnswer | IOTestsAnswer | None) -> TestSuite:
    cases: list[IOCase] = list(written.to_cases()) if isinstance(written, IOTestsAnswer) else []
    shown = visible_tests(task)
    if shown is not None and shown.kind == "io":
        cases += shown.cases
    unique = tuple(dict.fromkeys(cases))
    return TestSuite(kind="io", cases=unique) if unique else TestSuite(kind="asserts", code="")


def _explicit(suite: TestSuite) -> str:
    """The suite's code with its ``check(entry_point)`` call written out, if it has one."""
    if suite.entry_point and _defines_check(suite.code):
        return f"{suite.code.rstrip()}\n\n\ncheck({suite.entry_point})\n"
    return suite.code


# A top-level ``def check`` starts a line (decorated or not). Most suites have none, and this look
# spares them the parse (three per test run, on the event loop that every task in flight shares).
_CHECK_DEF = re.compile(r"^def[ \t]+check\b", re.MULTILINE)


def _defines_check(code: str) -> bool:
    if not _CHECK_DEF.search(code):
        return False
    try:
        tree = parse_quietly(code)
    except (SyntaxError, ValueError):
        return False
    return any(isinstance(s, ast.FunctionDef) and s.name == "check" for s in tree.body)
