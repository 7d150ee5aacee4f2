"""What each exported answer's verification rests on (``Evidence``), read off its trajectory, and the
answer's form: its explanation, the code, and optionally the tests (``ResponseStyle``).

The accepted attempt is the last attempt whose code is the final code and whose critique accepted it; a
plan record carries the evidence of the code its plan led to. Nothing here is taken on the model's word:
every number comes from a sandbox result in the trajectory.
"""

from __future__ import annotations

import re
from typing import Literal

from codestill.schemas import Attempt, Evidence, TestSuite, Trajectory, io_text
from tools.leaks import usable_explanation

ResponseStyle = Literal["code", "explained", "explained+tests"]
RESPONSE_STYLES: tuple[ResponseStyle, ...] = ("code", "explained", "explained+tests")
TESTS_INTRO = "Tests:"


_URL_CREDENTIALS = re.compile(r"(?<=//)[^/@\s]+@")


def public_model(label: str) -> str:
    """A model label with any ``user:password@`` of an endpoint URL taken out: labels name models and
    endpoints, never keys, but a URL can carry credentials and exports get shared."""
    return _URL_CREDENTIALS.sub("", label)


def passed_attempts(t: Trajectory) -> list[Attempt]:
    """Attempts that passed their tests (and hidden ones) and that the critic accepted (or that have no
    critique: records written by hand or by tools that judge by the tests alone), in order."""
    return [a for a in t.attempts if (a.critique is None or a.critique.verdict == "accept")
            and a.result is not None and a.result.passed and (a.hidden_result is None or a.hidden_result.passed)]


def accepted_attempt(t: Trajectory) -> Attempt | None:
    """The attempt that wrote the final code and was accepted (the last such one)."""
    final = (t.final_code or "").strip()
    matching = [a for a in passed_attempts(t) if a.code.strip() == final]
    return matching[-1] if matching else None


def evidence(t: Trajectory, attempt: Attempt | None) -> Evidence:
    """The evidence of ``attempt`` (of trajectory ``t``): its sandbox runs, tests, mutation score, the
    hidden tests, the teachers per role and the codestill release."""
    teachers = {role: public_model(spec) for role, spec in t.models.items()}
    base = {"teachers": teachers, "codestill_version": t.codestill_version}
    if attempt is None or attempt.result is None:
        return Evidence(**base)
    runs = [attempt.result.run_id] + ([attempt.hidden_result.run_id] if attempt.hidden_result is not None else [])
    hidden = attempt.hidden_result
    return Evidence(sandbox_runs=tuple(runs), tests_passed=attempt.result.n_passed,
                    tests_total=len(attempt.result.tests), test_kind=attempt.tests.kind if attempt.tests else "asserts",
                    mutation_score=attempt.mutation_score,
                    hidden_tests="none" if hidden is None else ("passed" if hidden.passed else "failed"),
                    hidden_passed=hidden.n_passed if hidden else 0, hidden_total=len(hidden.tests) if hidden else 0,
                    **base)


def explanation_of(t: Trajectory, attempt: Attempt | None) -> str:
    """The explanation that goes with ``attempt``'s code: the trajectory's for the final code (it may come
    from the coder asked afterwards), else the attempt's own; empty when none can stand in a sample."""
    final = attempt is None or attempt.code.strip() == (t.final_code or "").strip()
    text = (t.explanation if final else "") or (attempt.explanation if attempt is not None else "")
    return text.strip() if usable_explanation(text) else ""


def tests_text(suite: TestSuite | None) -> str | None:
    """The tests as a response shows them: assert code, or the stdin/stdout cases."""
    if suite is None:
        return None
    if suite.kind == "io":
        return io_text(suite.cases).strip() or None
    code = suite.code.strip()
    return f"```python\n{code}\n```" if code else None


def response(code: str, explanation: str, tests: TestSuite | None, style: ResponseStyle) -> str:
    """The answer a student imitates. ``explained``: the explanation of the approach, then the code
    (SelfCodeAlign's and AMR-Evol's responses); ``explained+tests``: then the tests it passed;
    ``code``: the code block alone (wave 1's form). Without an explanation, the code alone."""
    block = f"```python\n{code.strip()}\n```"
    if style == "code" or not explanation:
        return block
    parts = [explanation.strip(), block]
    if style == "explained+tests" and (shown := tests_text(tests)) is not None:
        parts += [TESTS_INTRO, shown]
    return "\n\n".join(parts)
