"""The realistic teacher: role handlers that err the way real teachers do, at ``SimConfig.rates()``.

``handlers(base)`` wraps the planner, coder, tester and critic of ``_roles``; with a rate of 0 a role
answers exactly as the base handler does (the default profile has every rate 0). Every roll is
``unit_interval`` of ``seed|problem|sha256(the request's user text)|choice|what``: the same seed and
request give the same reply, a re-ask with another prompt rolls again. Flaw labels (``flaws``) go to
the app in the answer's ``FLAW`` key, never on the wire in the body.

    tester   fresh, at test_flaw_rate: a flawed suite (``_suites.KINDS``; wrong_values runs a mutant of
             the reference on the asserts in a child process: the app does that off its event loop,
             ``mutant_job``, and passes the values in ``Ask.probed``).
             Asked again (``ASKED_AGAIN`` in the prompt) over a dispute (``DISPUTE`` in the why), at
             stubborn_rate: the previous tests (the fence under ``PREVIOUS_TESTS``) verbatim, label
             ``stubborn``; else a fresh answer, rolled again.
    coder    fresh (no failing ``status:`` line, no ``module:`` line, no planted bug_rate bug), at
             code_flaw_rate: ``hard_coded`` (each given test special-cased, else a mutant; with no given
             test readable it is a ``planted_bug``), ``planted_bug``, ``prose`` (the code field is prose
             around a fenced reference), ``misnamed`` (the entry point renamed).
             A repair whose feedback lists failing asserts, at bend_rate: ``bent`` (the previous solution,
             under "## Your previous solution", special-cased to those asserts); else the reference.
    critic   at critic_flaw_rate: ``accept_failing`` (accept, whatever the status), ``unreadable:verdict``
             (verdict "LGTM") or ``unreadable:missing`` (no verdict), ``off_taxonomy`` (reject, reason
             "too_hard"): the verdict or reason survives fitting to a schema (``RAW``).
    planner  at plan_flaw_rate, for a known problem: ``vague`` (one or two generic steps).

A program task (``_program.asks_program``): the tester, fresh or asked again, at test_flaw_rate writes
flawed cases (``_program.IO_FLAWS``: ``wrong_output``, ``too_few``, ``same_output``; never stubborn); the
coder, fresh, at code_flaw_rate writes the script over a mutant (``planted_bug``); a repair is the right
script. The critic and planner err as above.

The unknown role (a plain request), module requests, the decomposer, evolver and conceptor: unchanged.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial

from codestill.schemas import ASKED_AGAIN, DISPUTE, PREVIOUS_TESTS
from codestill.sim._mutant_runs import MutantJob
from codestill.sim._mutant_runs import mutant_job as _mutant_job
from codestill.sim._program import IO_FLAWS, asks_program, flawed_cases, script
from codestill.sim._render import FLAW, RAW
from codestill.sim._roles import _FAILING, _MODULE, _STATUS, Ask, Handler, entry_hint, unit_interval
from codestill.sim._special import (
    failing_asserts,
    fenced_after,
    given_tests,
    renamed,
    returning_constant,
    special_cased,
)
from codestill.sim._strong import with_extra
from codestill.sim._suites import KINDS, flawed, read_suite
from tools.mutants import plant_bug

CODE_FLAWS = ("hard_coded", "planted_bug", "prose", "misnamed")
CRITIC_FLAWS = ("accept_failing", "unreadable", "off_taxonomy")
VAGUE_STEPS = ("Solve the problem.", "Return the result.")


def _key(ask: Ask, what: str) -> str:
    pid = ask.problem.id if ask.problem is not None else "-"
    text = hashlib.sha256(ask.user_text.encode()).hexdigest()[:16]
    return f"{ask.seed}|{pid}|{text}|{ask.choice}|{what}"


def _roll(ask: Ask, what: str) -> float:
    return unit_interval(_key(ask, what))


def _pick(options: Sequence[str], ask: Ask, what: str) -> str:
    return options[int(_roll(ask, what) * len(options))]


def handlers(base: dict[str, Handler]) -> dict[str, Handler]:
    """``base`` with the planner, coder, tester and critic made to err at ``Ask.rates``."""
    wrapped = {"planner": planner, "coder": coder, "tester": tester, "critic": critic}
    return {**base, **{role: partial(fn, base[role]) for role, fn in wrapped.items() if role in base}}


# ---------------------------------------------------------------- planner, critic


def planner(base: Handler, ask: Ask) -> dict:
    answer = base(ask)
    if ask.role != "planner" or ask.problem is None or _roll(ask, "plan") >= ask.rates.plan_flaw_rate:
        return answer
    steps = list(VAGUE_STEPS[: 1 + int(_roll(ask, "plan-steps") * 2)])
    return {**answer, "steps": steps, "rationale": "", FLAW: "vague"}


def critic(base: Handler, ask: Ask) -> dict:
    answer = base(ask)
    if ask.role != "critic" or _roll(ask, "critic") >= ask.rates.critic_flaw_rate:
        return answer
    kind = _pick(CRITIC_FLAWS, ask, "critic-kind")
    if kind == "accept_failing":
        return {"verdict": "accept", "issues": [], "suggestion": "", FLAW: kind}
    issues = answer.get("issues") or []
    if kind == "off_taxonomy":
        return {"verdict": "reject", "issues": issues, "suggestion": "", "reason": "too_hard", RAW: ("reason",),
                FLAW: kind}
    if _roll(ask, "critic-unreadable") < 0.5:
        return {"verdict": "LGTM", "issues": issues, "suggestion": "Looks fine to me.", RAW: ("verdict",),
                FLAW: "unreadable:verdict"}
    return {"issues": issues, "suggestion": answer.get("suggestion", ""), RAW: ("verdict",),
            FLAW: "unreadable:missing"}


# ---------------------------------------------------------------- coder


def coder(base: Handler, ask: Ask) -> dict:
    answer = base(ask)
    p, rates = ask.problem, ask.rates
    if ask.role != "coder" or p is None or _MODULE.search(ask.last_user):
        return answer
    if any(s in _FAILING for s in _STATUS.findall(ask.user_text)):
        return answer if asks_program(ask.user_text) else _repair(ask, answer)
    if asks_program(ask.user_text):
        return _program_coder(ask, answer)
    if answer.get("code") != p.reference or _roll(ask, "code") >= rates.code_flaw_rate:
        return answer  # a planted bug_rate bug (rolled on its own), or no flaw
    kind = _pick(CODE_FLAWS, ask, "code-kind")
    entry = p.entry_point
    if kind == "prose":
        code = (f"Here is the solution:\n```python\n{p.reference.strip(chr(10))}\n```\nIt handles the examples "
                "in the task and the edge cases they imply.")
        return {**answer, "code": code, FLAW: kind}
    if kind == "misnamed":
        names = [n for n in ("solution", _camel(entry)) if n != entry] or ["solve"]
        new = names[int(_roll(ask, "code-name") * len(names))]
        return {**answer, "code": renamed(p.reference, entry, new), FLAW: f"{kind}:{new}"}
    planted = plant_bug(p.reference, _key(ask, "code-mutation"))
    wrong = planted[0] if planted else returning_constant(p.reference, entry)
    if kind == "hard_coded":
        given = given_tests(ask.user_text)
        cased = special_cased(wrong or p.reference, entry, given) if given else None
        if cased is not None:
            return {**answer, "code": cased[0], FLAW: kind}
    return {**answer, "code": wrong, FLAW: "planted_bug"} if wrong else answer


def _program_coder(ask: Ask, answer: dict) -> dict:
    """The right script, or at code_flaw_rate the script over a mutant of the reference."""
    p = ask.problem
    assert p is not None
    if answer.get("code") != script(p.reference, p.entry_point) or _roll(ask, "code") >= ask.rates.code_flaw_rate:
        return answer
    planted = plant_bug(p.reference, _key(ask, "code-mutation"))
    wrong = planted[0] if planted else returning_constant(p.reference, p.entry_point)
    return {**answer, "code": script(wrong, p.entry_point), FLAW: "planted_bug"} if wrong else answer


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(w[:1].upper() + w[1:] for w in rest)


def _repair(ask: Ask, answer: dict) -> dict:
    """The reference, or at bend_rate the previous solution bent to the failing asserts shown."""
    p = ask.problem
    assert p is not None
    asserts = failing_asserts(ask.user_text)
    if not asserts or _roll(ask, "bend") >= ask.rates.bend_rate:
        return answer
    previous = fenced_after(ask.user_text, "## Your previous solution")
    bent = special_cased(previous, p.entry_point, "\n".join(asserts)) if previous else None
    return {**answer, "code": bent[0], FLAW: "bent"} if bent else answer


# ---------------------------------------------------------------- tester


@dataclass(frozen=True)
class TesterPlan:
    repeat: str | None = None  # stubborn: these tests again, verbatim
    flaw: str | None = None  # a kind of ``_suites.KINDS``


def correct_tests(ask: Ask) -> str:
    assert ask.problem is not None
    return with_extra(ask.problem.tests.code, ask.extra_tests)


def tester_plan(ask: Ask) -> TesterPlan:
    """What this tester's answer will be: a pure function of the ask (the app and the handler agree)."""
    p, rates = ask.problem, ask.rates
    if ask.role != "tester" or p is None or (rates.test_flaw_rate <= 0 and rates.stubborn_rate <= 0):
        return TesterPlan()
    text = ask.user_text
    if asks_program(text):
        if _roll(ask, "tests") >= rates.test_flaw_rate:
            return TesterPlan()
        return TesterPlan(flaw=IO_FLAWS[int(_roll(ask, "tests-kind") * len(IO_FLAWS))])
    at = text.rfind(ASKED_AGAIN)
    if at >= 0 and DISPUTE in text[at:] and _roll(ask, "stubborn") < rates.stubborn_rate:
        previous = fenced_after(text, PREVIOUS_TESTS)
        if previous is not None and previous.strip():
            return TesterPlan(repeat=previous + "\n")
    if _roll(ask, "tests") >= rates.test_flaw_rate:
        return TesterPlan()
    code = correct_tests(ask)
    suite = read_suite(code, p.entry_point)
    start = int(_roll(ask, "tests-kind") * len(KINDS))
    for kind in (KINDS[(start + i) % len(KINDS)] for i in range(len(KINDS))):
        if flawed(kind, suite, code, p.reference, p.entry_point, 0.5, {}) is not None:
            return TesterPlan(flaw=kind)
    return TesterPlan()


def mutant_job(ask: Ask) -> MutantJob | None:
    """The mutant run this tester's answer needs (a wrong_values flaw), or None."""
    if tester_plan(ask).flaw != "wrong_values" or ask.problem is None or asks_program(ask.user_text):
        return None
    return _mutant_job(ask.problem, read_suite(correct_tests(ask), ask.problem.entry_point),
                       _key(ask, "tests-mutation"))


def tester(base: Handler, ask: Ask) -> dict:
    plan = tester_plan(ask)
    if plan.repeat is not None:
        return {"tests": plan.repeat, "entry_point": entry_hint(ask), FLAW: "stubborn"}
    if plan.flaw is None or ask.problem is None:
        return base(ask)
    if asks_program(ask.user_text):
        made = flawed_cases(plan.flaw, ask.io_cases, _roll(ask, "tests-variant"))
        if made is None:
            return base(ask)
        return {"cases": [{"input": i, "output": o} for i, o in made], FLAW: plan.flaw}
    p = ask.problem
    code = correct_tests(ask)
    made = flawed(plan.flaw, read_suite(code, p.entry_point), code, p.reference, p.entry_point,
                  _roll(ask, "tests-variant"), dict(ask.probed))
    if made is None:
        return base(ask)
    return {"tests": made[0], "entry_point": p.entry_point, FLAW: made[1]}
