"""The strict gates between a sandbox run and a verdict (``SolveConfig.gates = "strict"``).

In order, the first that applies decides (each is a repair of the tests or of the code, a reject,
or the way on to the next):

1. The tester's suite was refused before it ran (``agents._suite.refusal``: it does not parse,
   replaces the code under test, never calls its test functions, or checks too few concrete
   inputs) -> the tester, told why.
2. The suite did not run (a setup statement of the tests failed, a test names something nobody
   defined) -> the tester, with the error.
3. Tests the *tester* wrote failed -> a dispute: before anyone repairs, the tester re-derives those
   expected values with each failing call and what the code returned shown (``codestill.schemas.
   DISPUTE``). A new suite is run against the same code; the asserts it keeps are settled in the
   tests' favour and go to the coder like any failure (the task's own tests are never disputed).
4. The code answers a test's exact input with that test's exact expected value -> the coder
   (``agents._suite.special_cases``), whatever the critic says.
5. The tests passed: the suite must kill ``min_mutation_score`` of ``mutants`` mutants of the code
   (``graphs._adequacy``) -> else the tester, with the surviving mutants as counterexamples. And a
   suite written without seeing the code must be among them (``tester_samples`` > 1, unless the task
   brought its own tests) -> else the tester again.
6. The critic (asked again on an unreadable reply, ``critic_retries``) under ``critic.overrule``,
   which fails closed: an unread verdict is never an accept.

Every "the tester again" costs one of ``test_rounds``; with none left, a refused or inadequate
suite ends the branch (``repeated_failure``) and a dispute goes to the coder as a plain failure.

A program task (``agents._common.is_program``) is judged by stdin/stdout cases, and each gate does the
same job for them:

1. Refused: no case, fewer than ``min_inputs`` distinct inputs (the task's own cases count), two cases
   giving one input different outputs, every output empty, or one output for every input
   (``agents._suite.io_refusal``).
2. Never "did not run": a case's input is data, so a crash on it is the program's to explain (the
   program does not compile, raises, or exits non-zero) and goes to the coder.
3. A failing (wrong output, not a crash) case the tester wrote is disputed like a failing assert, shown
   by its input and its expected output, never by what the program printed.
   Blind samples: the samples' cases are run as one suite (duplicates once); a blind case that gives
   an input of the first sample another output makes the program fail one of the two, which is then
   a dispute: the tester re-derives it. No case is dropped for disagreeing.
4. A program whose source holds a case's input and its expected output as literals special-cases it
   (``agents._suite.io_special_cases``).
5. Mutants run against the io suite in the sandbox like any suite, leaving out those that change a
   line reading the input or the main guard (``graphs._adequacy``): every case kills those, so they
   would only inflate the score.
6. The critic, told that reading stdin and printing is the task (``prompts/critic_program.md``);
   ``critic.overrule``'s weak check is ``_weak.weak_io``.

As with asserts, no gate lets through a program any of whose cases fails: an accept needs a passing run.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
from typing import Any

from langchain_core.runnables import RunnableConfig

from agents import critic, tester
from agents._answers import IOTestsAnswer, TestsAnswer
from agents._common import is_program, visible_tests
from agents._suite import (
    defined_names,
    distinct_inputs,
    io_inputs,
    io_refusal,
    io_special_cases,
    refusal,
    special_cases,
)
from codestill.schemas import DISPUTE, Critique, ExecResult, IOCase, Task, TestSuite, io_text
from codestill.structured import Reply
from graphs._adequacy import judge_suite
from graphs._deps import SolveDeps
from graphs._state import BranchState

_UNDEFINED = re.compile(r"NameError: name '(\w+)' is not defined")
# How the sandbox names an io case's result (``tools/sandbox/_tests.py`` ``prepare``): "case 3: stdin '5\n'".
_IO_CASE = re.compile(r"^case \d+: stdin ")
# How the io harness says a case printed the wrong thing (``tools/sandbox/_runner.py`` ``_run_io_case``).
_IO_EXPECTED = re.compile(r"""^expected ('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")""")


def suite_refusal(deps: SolveDeps, task: Task, code: str, reply: Reply[Any]) -> str | None:
    """Gate 1, on a fresh suite before it runs: why it cannot judge ``code``, or None."""
    if is_program(task):
        return _io_refusal(deps, task, reply)
    written = reply.value
    entry = task.entry_point or (written.entry_point if written is not None else None)
    given = visible_tests(task)
    given_inputs = distinct_inputs(given.code, entry) if given is not None and given.kind == "asserts" else 0
    if written is None:
        if given_inputs >= deps.config.min_inputs:
            return None  # the task's own tests are enough to go on with
        return f"the tester's reply could not be read: {reply.error or 'no valid answer'}"
    return refusal(written.tests, entry, defined_names(code), deps.config.min_inputs, given_inputs)


def _io_refusal(deps: SolveDeps, task: Task, reply: Reply[Any]) -> str | None:
    given = visible_tests(task)
    given_inputs = io_inputs(given.cases) if given is not None and given.kind == "io" else 0
    if not isinstance(reply.value, IOTestsAnswer):
        if given_inputs >= deps.config.min_inputs:
            return None  # the task's own cases are enough to go on with
        return f"the tester's reply could not be read: {reply.error or 'no valid answer'}"
    return io_refusal(reply.value.to_cases(), deps.config.min_inputs, given_inputs)


async def blind_again(deps: SolveDeps, config: RunnableConfig, task: Task, code: str, specs: Any,
                      replies: list[Reply[Any]], tries: int = 2) -> list[Reply[Any]]:
    """Each blind sample that would be refused is asked again (at most ``tries`` times), told why: a
    sample left out is a cross-check lost, and then a wrong value the code and the first suite share
    goes unseen."""
    out = list(replies)
    for n in range(tries):
        redo = [(i, why) for i, r in enumerate(out) if i > 0
                and (why := suite_refusal(deps, task, code, r)) is not None]
        if not redo:
            break
        fresh = await asyncio.gather(*(tester.write_tests(
            deps.model("tester"), task, None, specs, why=f"your tests were refused: {why}",
            previous=v.tests if (v := out[i].value) is not None else None, sample=100 * (n + 1) + i,
            **deps.call_options(config, "tester")) for i, why in redo))
        for (i, _), reply in zip(redo, fresh, strict=True):
            out[i] = dataclasses.replace(reply, usage=out[i].usage + reply.usage)
    return out


def merge_suites(deps: SolveDeps, task: Task, code: str, replies: list[Reply[Any]],
                 earlier_blind: str | None = None,
                 disputed_suite: str | None = None) -> tuple[TestsAnswer | IOTestsAnswer | None, str | None, str | None]:
    """The tester's samples as one suite, why it is refused (None: it is not), and the blind samples'
    tests (to stand in for a later round whose blind samples are all refused). A sample that is
    refused on its own is left out; the suite is refused only when every sample is (the first one's
    reason). Several samples are the suites a CodeT-style agreement compares: run as one, a value the
    code and one sample share but another contradicts fails, and becomes a dispute. ``earlier_blind``:
    an earlier round's blind tests, used when no blind sample of this round is usable.
    ``disputed_suite``: on a dispute round, the suite under dispute; a tester whose re-derivation
    cannot be used did not take its values back, so they stand.
    A program's samples are merged by ``_merge_io`` the same way."""
    if is_program(task):
        return _merge_io(deps, task, code, replies, earlier_blind, disputed_suite)
    reasons = [suite_refusal(deps, task, code, r) for r in replies]
    usable = [(i, r.value) for i, (r, why) in enumerate(zip(replies, reasons, strict=True))
              if why is None and r.value is not None]
    if not usable:
        return replies[0].value, reasons[0], earlier_blind
    first = next((v for i, v in usable if i == 0), None)
    if first is None and disputed_suite:
        first = TestsAnswer(tests=disputed_suite, entry_point=usable[0][1].entry_point)
    blind = "\n\n".join(v.tests.strip("\n") for i, v in usable if i > 0 and v.tests.strip()) or None
    if blind is None and len(replies) > 1:
        blind = earlier_blind
    parts = [p for p in ((first.tests.strip("\n") if first is not None else None), blind) if p]
    entry = usable[0][1].entry_point
    return TestsAnswer(tests="\n\n".join(parts) + "\n", entry_point=entry), None, blind


def _merge_io(deps: SolveDeps, task: Task, code: str, replies: list[Reply[Any]], earlier_blind: str | None,
              disputed_suite: str | None) -> tuple[IOTestsAnswer | None, str | None, str | None]:
    """``merge_suites`` for stdin/stdout cases: the usable samples' cases as one suite, the first
    sample's first, each (input, output) pair once. Cases that disagree (one input, two outputs) both
    stay: the program fails one of them, which the next gate makes a dispute. The blind cases are
    kept in their text form (``io_text``), as an asserts suite's blind tests are kept as code."""
    reasons = [suite_refusal(deps, task, code, r) for r in replies]
    usable = [(i, r.value) for i, (r, why) in enumerate(zip(replies, reasons, strict=True))
              if why is None and isinstance(r.value, IOTestsAnswer)]
    if not usable:
        first_value = replies[0].value
        return first_value if isinstance(first_value, IOTestsAnswer) else None, reasons[0], earlier_blind
    first = next((v.to_cases() for i, v in usable if i == 0), None)
    if first is None and disputed_suite:
        first = _io_cases(disputed_suite)
    blind_cases = [c for i, v in usable if i > 0 for c in v.to_cases()]
    blind = io_text(blind_cases) if blind_cases else None
    if blind is None and len(replies) > 1:
        blind = earlier_blind
    cases = tuple(dict.fromkeys([*(first or ()), *(_io_cases(blind) if blind else ())]))
    if not cases:
        return None, reasons[0] or "the tester wrote no stdin/stdout case", blind
    merged = IOTestsAnswer.model_validate({"cases": [c.model_dump() for c in cases]})
    return merged, None, blind


def _io_cases(text: str) -> tuple[IOCase, ...]:
    """The cases of an io suite kept in its text form (``io_text``); none if it cannot be read."""
    found = IOTestsAnswer.from_text(text)
    return IOTestsAnswer.model_validate(found).to_cases() if found else ()


LACKS_BLIND = ("none of your tests written without seeing the solution could be used, so nothing checks the "
               "suite that saw it: write the suite again, every expected value worked out from the task")


def lacks_blind(deps: SolveDeps, task: Task, blind_key: str | None) -> bool:
    """An accept needs a suite written without the code among the tests it passed (when blind samples
    are asked for), unless the task brought tests of its own, which are independent of the code too."""
    return deps.config.tester_samples > 1 and blind_key is None and visible_tests(task) is None


def did_not_run(result: ExecResult, code: str, entry: str | None) -> str | None:
    """Gate 2: the tests' own fault, or None. A name the tests call that the code should define (the
    entry point, misnamed by the coder) is the code's fault. An io run's errors are always the
    program's: its cases are data, not code."""
    if result.status != "error" or _io_run(result):
        return None
    if result.message.startswith("test setup failed"):
        return f"your tests did not run: {result.message}"
    ours = defined_names(code) | ({entry} if entry else set())
    for t in result.tests:
        m = _UNDEFINED.search(t.message) if t.outcome == "error" else None
        if m and m.group(1) not in ours:
            return f"your tests did not run: `{t.name}` uses `{m.group(1)}`, which nothing defines"
    return None


def _io_run(result: ExecResult) -> bool:
    return bool(result.tests) and all(_IO_CASE.match(t.name) for t in result.tests)


def _given_names(task: Task) -> set[str]:
    given = visible_tests(task)
    if given is None or given.kind != "asserts":
        return set()
    return {line.strip()[:160] for line in given.code.splitlines() if line.strip()}


def disputed(task: Task, result: ExecResult, already: list[str]) -> list[str]:
    """Gate 3: the tester's asserts that failed (a wrong value, not an error: a crash is the code's to
    explain) and were not disputed before, by their first line. What the code returned is not shown:
    a tester shown the code's answer tends to adopt it, and the point is an independent derivation.
    An io case that failed (a wrong output) is shown as its name (with its stdin) and its expected
    output; the task's own cases, known by their stdin, are never disputed."""
    given = _given_names(task)
    given_io = _given_stdin(task)
    out: list[str] = []
    for t in result.tests:
        if t.outcome != "failed":
            continue
        if _IO_CASE.match(t.name):
            line = _io_line(t.name, t.message)
            if t.name.partition(": ")[2] not in given_io and line not in already:
                out.append(line)
        elif t.name not in given and t.name not in already and t.name.lstrip().startswith("assert"):
            out.append(t.name)
    return out


def _given_stdin(task: Task) -> set[str]:
    """The task's own visible io cases as their result names end: "stdin '<first 40 characters>'"."""
    given = visible_tests(task)
    if given is None or given.kind != "io":
        return set()
    return {f"stdin {c.input[:40]!r}" for c in given.cases}


def _io_line(name: str, message: str) -> str:
    m = _IO_EXPECTED.match(message)
    return f"{name}: expected output {m.group(1)}" if m else name


def dispute_why(lines: list[str]) -> str:
    if lines and all(_IO_CASE.match(line) for line in lines):
        return (f"{DISPUTE} Re-derive the expected output for each input below from the task alone (not from the "
                "solution): keep a case only if you are sure the task demands that output, correct it otherwise. "
                "(The solution disagrees with them; it may be the one that is wrong.)\n"
                + "\n".join(f"- {line}" for line in lines))
    return (f"{DISPUTE} Re-derive each expected value below from the task alone (not from the solution): "
            "keep an assert only if you are sure the task demands that value, correct it otherwise. (The solution "
            "disagrees with them; it may be the one that is wrong.)\n"
            + "\n".join(f"- {line}" for line in lines))


def rounds_left(state: BranchState, deps: SolveDeps) -> bool:
    return state.get("test_rounds", 0) < deps.config.test_rounds


def to_tester(state: BranchState, why: str) -> dict[str, Any]:
    """The state update that sends the branch back to the tester with ``why``."""
    verdict = Critique(verdict="repair", issues=(why,), weak_tests=True,
                       suggestion="The tester writes the suite again; the code stays as it is.")
    return {"test_feedback": why, "test_rounds": state.get("test_rounds", 0) + 1, "critique": verdict}


async def adequacy(deps: SolveDeps, code: str, suite: TestSuite) -> tuple[float | None, str | None]:
    """Gate 5: (mutation score, why the suite is too weak or None)."""
    if deps.config.mutants == 0:
        return None, None
    found = await judge_suite(deps.sandbox, code, suite, deps.config.mutants)
    score = found.score
    if score is None or score >= deps.config.min_mutation_score:
        return score, None
    shown = "\n".join(f"- {s}" for s in found.survivors[:5])
    why = (f"your tests let {len(found.survivors)} of {found.judged} changed versions of the solution pass "
           f"(mutation score {score:.2f}, at least {deps.config.min_mutation_score:.2f} is needed). Each version "
           "below differs from the solution in one place; add asserts, with expected values worked out from the "
           f"task, on inputs where it would give a different answer:\n{shown}")
    return score, why


async def ask_critic(deps: SolveDeps, config: RunnableConfig, task: Task, code: str, tests: TestSuite,
                     result: ExecResult, hidden: ExecResult | None) -> tuple[Critique, Any, list[str]]:
    """Gate 6: the critic's verdict under ``overrule``, asking again while its reply cannot be read.
    Returns (verdict, usage, failures)."""
    if not deps.config.critic_on_failure and (known := critic.unasked(result, hidden)) is not None:
        return known, None, []
    usage, failures = None, []
    tries = 1 + (deps.config.critic_retries if deps.config.gates == "strict" else 0)
    reply = None
    for _ in range(tries):
        reply = await critic.judge(deps.model("critic"), task, code, tests, result, hidden=hidden,
                                   **deps.call_options(config, "critic"))
        usage = reply.usage if usage is None else usage + reply.usage
        if reply.value is not None:
            break
        failures.append(f"critic: {reply.error}")
    assert reply is not None
    verdict = critic.overrule(reply.value, result, hidden, tests, critic_error=reply.error,
                              fail_closed=deps.config.gates == "strict")
    return verdict, usage, failures


def special(task: Task, code: str, tests: TestSuite) -> Critique | None:
    """Gate 4 as a repair, or None."""
    if tests.kind == "io":
        found = io_special_cases(code, tests.cases)
        if not found:
            return None
        return Critique(verdict="repair", issues=tuple(f"the program special-cases a test: {f}" for f in found[:5]),
                        suggestion="Remove the branches that print a case's expected output for its exact input "
                                   "and fix the logic so that every input gets the right answer.")
    found = special_cases(code, tests.code, task.entry_point or tests.entry_point)
    if not found:
        return None
    return Critique(verdict="repair", issues=tuple(f"the code special-cases a test: {f}" for f in found[:5]),
                    suggestion="Remove the branches that return a test's expected value for its exact input "
                               "and fix the logic so that every input gets the right answer.")
