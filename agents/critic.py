"""The critic: judges one attempt (code, tests, sandbox result) as accept | repair | replan | reject.

The model's answer is advice; ``overrule`` applies the rules that no answer may break, and
``weak_tests`` is the deterministic check for tests that would pass wrong code. Hidden tests are
summarised by counts only, never by their text, so the critic's issues can go back to the coder.
A program task (``is_program``) gets a note after the task (``prompts/critic_program.md``): reading
stdin and printing the answer is what it asks for, not unclean code.
"""

from __future__ import annotations

from langchain_core.language_models import BaseChatModel
from langchain_core.runnables import RunnableConfig

from agents._answers import CriticAnswer
from agents._common import call, is_program, suite_text, task_section
from agents._prompts import fenced, render
from agents._weak import weak_tests
from codestill.schemas import Critique, ExecResult, Task, TestSuite
from codestill.structured import Method, Reply

__all__ = ["hidden_summary", "judge", "overrule", "unasked", "weak_tests"]

_MAX_ISSUES = 5


async def judge(model: BaseChatModel, task: Task, code: str, tests: TestSuite, result: ExecResult, *,
                hidden: ExecResult | None = None, config: RunnableConfig | None = None,
                method: Method = "auto", repair_rounds: int = 1, max_tokens: int | None = None) -> Reply[CriticAnswer]:
    """The critic's answer for one attempt. The visible result's ``feedback()`` is the last part of the
    task (its ``status:`` line is the last one; only the answer's form follows); the hidden result comes
    before it, as counts."""
    extra = "\n\n" + render("critic_hidden", summary=hidden_summary(hidden)) if hidden is not None else ""
    about = task_section(task) + ("\n\n" + render("critic_program") if is_program(task) else "")
    user = render("critic_user", task=about, code=fenced(code), tests=fenced(suite_text(tests)),
                  hidden=extra, result=result.feedback())
    return await call(model, "critic", user, CriticAnswer, config=config, method=method,
                      repair_rounds=repair_rounds, max_tokens=max_tokens)


def hidden_summary(hidden: ExecResult) -> str:
    """``hidden tests: 3/5 passed (run status failed)``: counts and status, never a test's text."""
    return f"hidden tests: {hidden.n_passed}/{len(hidden.tests)} passed (run status {hidden.status})"


def overrule(answer: CriticAnswer | None, result: ExecResult, hidden: ExecResult | None,
             tests: TestSuite, *, critic_error: str | None = None, fail_closed: bool = True) -> Critique:
    """The final critique: the model's ``answer`` (None: its reply could not be read, ``critic_error``
    says why) under the rules below, first match wins.

    1. The sandbox failed (``infra_error``, visible or hidden) -> repair. The run says nothing about
       the code, so no verdict may rest on it; the graph's repair budget bounds the retries.
    2. The model rejects -> reject, with its reason or "unsolvable". A reject is the one verdict that
       may stand whatever the tests say: the tests may be wrong, the task ambiguous or unsafe.
    3. The visible or hidden tests did not pass -> never accept: the model's replan stands (it judged
       the approach wrong), anything else becomes a repair whose issues are the failures (hidden ones
       as counts only, so the coder never sees hidden test text) after the model's own issues.
    4. The tests passed but are weak (``weak_tests`` finds no real check, or the model flagged them)
       -> repair with ``weak_tests=True``: passing weak tests proves nothing, the tester must redo them.
    5. The critic's reply could not be read -> reject as ``model_failure`` (the graph asks the critic
       again first, ``SolveConfig.critic_retries``): an unread verdict is never an accept, since passing
       tests are the critic's evidence, not its judgement of the code against the task. Had the tests
       failed or been weak, rules 3-4 made it a repair whose first issue is "the critic's reply could
       not be read: <critic_error>". (``fail_closed=False``: wave 1's rule, accept; kept only so
       ``bench/data_precision.py`` can measure what this rule changes.)
    6. Otherwise the model's verdict stands (accept; a repair or replan of passing code, e.g. code that
       special-cases the tests, is the critic's call).
    """
    unreadable = f"the critic's reply could not be read: {critic_error or 'no valid answer'}"
    model_issues = (unreadable,) if answer is None else tuple(i for i in answer.issues if i.strip())
    suggestion = "" if answer is None else answer.suggestion
    runs = [r for r in (result, hidden) if r is not None]
    if any(r.status == "infra_error" for r in runs):
        issues = [f"the sandbox could not run the program: {r.message or 'infra_error'}"
                  for r in runs if r.status == "infra_error"]
        return Critique(verdict="repair", issues=(*issues, *model_issues),
                        suggestion=suggestion or "Run the same program again; the failure was the sandbox's.")
    if answer is not None and answer.verdict == "reject":
        return answer.to_critique()
    if not result.passed or (hidden is not None and not hidden.passed):
        failures = _failures(result, hidden)
        if answer is not None and answer.verdict == "replan":
            return Critique(verdict="replan", issues=(*model_issues, *failures), suggestion=suggestion)
        return Critique(verdict="repair", issues=(*model_issues, *failures),
                        suggestion=suggestion or "Fix the code so that every test passes.")
    weak = weak_tests(tests)
    if weak is not None or (answer is not None and answer.weak_tests):
        issues = (f"the tests are too weak: {weak}",) if weak is not None else ()
        return Critique(verdict="repair", issues=(*issues, *model_issues), weak_tests=True,
                        suggestion=suggestion or "Write tests that compare each call with its exact expected value.")
    if answer is None:
        if not fail_closed:
            return Critique(verdict="accept")
        return Critique(verdict="reject", issues=(unreadable,), reason="model_failure")
    return answer.to_critique()


def unasked(result: ExecResult, hidden: ExecResult | None) -> Critique | None:
    """The verdict of a run that failed, without asking the critic (``solve.critic_on_failure`` off), or
    None when the runs passed and the critic must judge.

    Under ``overrule`` a failing run is never accepted: a model's accept or repair becomes the same
    repair (rules 1 and 3), so asking costs a reply whose verdict is known; that repair is returned
    here, from ``overrule`` itself. What the call could still add is a replan or a reject; without it
    the branch's bounded repairs end in ``repeated_failure``, which replans (``graphs/solve.py`` ``select``)."""
    if result.passed and (hidden is None or hidden.passed):
        return None
    return overrule(CriticAnswer(verdict="repair"), result, hidden, TestSuite())


def _failures(result: ExecResult, hidden: ExecResult | None) -> tuple[str, ...]:
    out: list[str] = []
    if not result.passed:
        out.append(f"the tests did not pass: {result.n_passed}/{len(result.tests)} passed (run status "
                   f"{result.status}){': ' + result.message if result.message else ''}")
        bad = [t for t in result.tests if t.outcome != "passed"]
        out += [f"{t.name}: {t.outcome}{': ' + t.message if t.message else ''}" for t in bad[:_MAX_ISSUES]]
    if hidden is not None and not hidden.passed:
        out.append(f"the hidden tests did not pass: {hidden_summary(hidden)}")
    return tuple(out)
