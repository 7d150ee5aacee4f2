"""The realistic teacher (``codestill.sim._teacher``): each flaw occurs and is what its label claims,
the rates hold over MBPP, replies are seeded, the default profile is unchanged."""

from __future__ import annotations

import ast
import json
import warnings
from collections import Counter
from dataclasses import replace
from typing import Any

import openai
import pytest
from openai.types.chat import ChatCompletionToolParam
from pydantic import ValidationError
from typer.testing import CliRunner

from agents import CriticAnswer
from codestill.data import BankProblem
from codestill.schemas import ASKED_AGAIN, DISPUTE, PREVIOUS_TESTS, ExecResult, TestResult
from codestill.sim import PROFILES, SimConfig, TeacherRates
from codestill.sim import _teacher as teacher
from codestill.sim._app import FLAWS_HEADER
from codestill.sim._mutant_runs import mutant_job, run_mutant
from codestill.sim._render import FLAW, RAW
from codestill.sim._roles import Ask, default_handlers
from codestill.sim._strong import strong_tests, with_extra
from codestill.sim._suites import KINDS, flawed, read_suite

from .conftest import MODEL, messages, texts, tool_arguments

REALISTIC = PROFILES["realistic"]
HANDLERS = teacher.handlers(default_handlers())
BASE = default_handlers()
SAMPLE = ["mbpp/2", "mbpp/3", "mbpp/17", "mbpp/101", "mbpp/160", "humaneval/0", "humaneval/2", "humaneval/10"]
GIVEN = "The solution must pass these given tests:"


def user_text(role: str, p: BankProblem, extra: str = "") -> str:
    return texts(role, p, extra)[1]


def ask(role: str, p: BankProblem, text: str | None = None, rates: TeacherRates = REALISTIC, *, choice: int = 0,
        seed: int = 0, extra_tests: str = "") -> Ask:
    text = user_text(role, p) if text is None else text
    return Ask(role=role, problem=p, user_text=text, last_user=text, choice=choice, style=choice, seed=seed,
               bug_rate=0.0, rates=rates, extra_tests=extra_tests)


def forced(role: str, p: BankProblem, text: str, rates: TeacherRates, label: str) -> dict:
    """The first choice (0, 1, ...) whose answer has a label starting with ``label``."""
    for choice in range(400):
        answer = HANDLERS[role](ask(role, p, text, rates, choice=choice))
        if str(answer.get(FLAW, "")).startswith(label):
            return answer
    raise AssertionError(f"no {label} in 400 choices")


def run_asserts(program: str, tests: str) -> tuple[int, int]:
    """(failed, total) top-level asserts of ``tests`` run after ``program`` in one namespace."""
    namespace: dict = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exec(compile(program, "program", "exec"), namespace)
        failed = total = 0
        for stmt in ast.parse(tests).body:
            total += isinstance(stmt, ast.Assert)
            try:
                exec(compile(ast.Module([stmt], []), "tests", "exec"), namespace)
            except Exception:
                failed += 1
    return failed, total


def given_prompt(p: BankProblem) -> str:
    """A coder prompt as the agents write it: the task's tests in an untagged fence after ``GIVEN``."""
    return f"Task:\n{p.instruction}\n\n{GIVEN}\n\n```\n{p.tests.code.strip()}\n```\n\n## Plan\n\n1. Do it."


def feedback(*tests: TestResult) -> str:
    return ExecResult(run_id="r1", status="failed", tests=tests).feedback()


# ---------------------------------------------------------------- the default profile


def test_the_default_profile_and_rates_of_zero_answer_as_the_answer_key(bank):
    assert SimConfig().rates() == TeacherRates() and not SimConfig().rates().errs
    zero: dict[str, Any] = {name: 0.0 for name in vars(REALISTIC)}
    assert SimConfig(teacher="realistic", **zero).rates() == TeacherRates()
    assert SimConfig(teacher="realistic", bend_rate=0.1).rates() == replace(REALISTIC, bend_rate=0.1)
    assert SimConfig(test_flaw_rate=0.5).rates() == TeacherRates(test_flaw_rate=0.5)  # explicit: either profile
    repair = "\n## Your previous solution\n\n```python\ndef f(x):\n    return 0\n```\n\n" + feedback(
        TestResult(name="assert f(1) == 2", outcome="failed", message="assert 0 == 2"))
    for pid in SAMPLE:
        p = bank[pid]
        for role, extra in (("planner", ""), ("coder", ""), ("coder", repair), ("tester", ""), ("critic", repair)):
            for rates in (TeacherRates(), replace(REALISTIC, **zero)):
                a = ask(role, p, user_text(role, p, extra), rates)
                assert HANDLERS[role](a) == BASE[role](a), (pid, role)


def test_a_realistic_server_with_rates_of_zero_replies_as_the_default_one(serve, bank):
    zero: dict[str, Any] = {name: 0.0 for name in vars(REALISTIC)}

    def replies(url: str) -> list[str]:
        client = openai.OpenAI(base_url=url, api_key="sk-test", max_retries=0, timeout=60)
        out = []
        for pid in ("mbpp/2", "humaneval/0"):
            for role in ("planner", "coder", "tester", "critic"):
                r = client.chat.completions.with_raw_response.create(model=MODEL, messages=messages(role, bank[pid]),
                                                                     n=2)
                assert FLAWS_HEADER not in r.headers
                out += [c.message.content for c in r.parse().choices]
        return out

    assert replies(serve(seed=5, teacher="realistic", **zero)) == replies(serve(seed=5))


# ---------------------------------------------------------------- the tester


@pytest.mark.parametrize("pid", SAMPLE)
def test_each_flawed_suite_is_what_its_label_claims(bank, pid):
    p = bank[pid]
    code = with_extra(p.tests.code, strong_tests(p, 0))
    suite = read_suite(code, p.entry_point)
    assert suite.cases and suite.check == (p.source == "humaneval")
    job = mutant_job(p, suite, f"0|{pid}|test")
    probed = dict(run_mutant(job)) if job is not None else {}
    for kind in KINDS:
        for u in (0.2, 0.8):
            made = flawed(kind, suite, code, p.reference, p.entry_point, u, probed)
            if kind == "too_few" and suite.check:
                assert made is None  # not for a HumanEval check(candidate) suite
                continue
            assert made is not None, (pid, kind)
            tests, label = made
            assert label.split(":")[0] == kind
            if kind == "syntax_error":
                with pytest.raises(SyntaxError):
                    ast.parse(tests)
                continue
            tree = ast.parse(tests)
            failed, total = run_asserts(p.reference, tests)
            calls = {n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
            defs = [s.name for s in tree.body if isinstance(s, ast.FunctionDef)]
            if kind == "wrong_values":
                assert failed >= 1, (pid, label, tests)  # really wrong against the reference
            elif kind == "too_few":
                assert total == 1 and failed == 0
            elif kind == "uncalled":
                assert defs and all(d.startswith("test_") for d in defs) and not set(defs) & calls and total == 0
            elif label == "no_entry:shadow":
                first_def = next(s for s in tree.body if isinstance(s, ast.FunctionDef | ast.Assert))
                assert isinstance(first_def, ast.FunctionDef) and p.entry_point in defs and failed == 0
            elif label == "no_entry:helper":
                asserts = [s for s in tree.body if isinstance(s, ast.Assert)]
                assert asserts and p.entry_point not in defs and failed == 0
                assert not any(isinstance(n, ast.Name) and n.id == p.entry_point for a in asserts for n in ast.walk(a))
            else:  # tautology, shape_only: pass whatever the candidate is
                assert total >= 1 and failed == 0, (pid, label)
                if kind == "shape_only":
                    assert all(t.startswith(("assert isinstance(", "assert len(")) for t in tests.splitlines()
                               if t.startswith("assert"))


def test_wrong_values_come_from_a_mutant_run_off_the_event_loop(serve, bank):
    """Over HTTP: the app runs the mutant (child process) and the header labels each choice."""
    client = openai.OpenAI(base_url=serve(teacher="realistic", test_flaw_rate=1.0), api_key="sk-test",
                           max_retries=0, timeout=60)
    seen: Counter[str] = Counter()
    for pid in ("mbpp/3", "mbpp/17", "humaneval/0"):
        p = bank[pid]
        raw = client.chat.completions.with_raw_response.create(
            model=MODEL, messages=messages("tester", p), response_format={"type": "json_object"}, n=16)
        labels = raw.headers[FLAWS_HEADER].split(",")
        answers = [json.loads(c.message.content or "") for c in raw.parse().choices]
        assert len(labels) == 16 and "-" not in labels
        for label, answer in zip(labels, answers, strict=True):
            seen[label.split(":")[0]] += 1
            assert FLAW not in answer and answer["entry_point"] == p.entry_point
            if label == "wrong_values:mutant":
                assert run_asserts(p.reference, answer["tests"])[0] >= 1
        assert any(label == "wrong_values:mutant" for label in labels), pid
        again = client.chat.completions.with_raw_response.create(
            model=MODEL, messages=messages("tester", p), response_format={"type": "json_object"}, n=16)
        assert again.headers[FLAWS_HEADER] == raw.headers[FLAWS_HEADER]
        assert [c.message.content for c in again.parse().choices] == [c.message.content for c in raw.parse().choices]
    assert set(seen) == set(KINDS)


def _again(p: BankProblem, why: str, previous: str) -> str:
    return (f"{user_text('tester', p)}\n\n{ASKED_AGAIN}\n\n{why}\n\n{PREVIOUS_TESTS}\n\n```\n{previous.strip()}\n```\n\n"
            "Write the whole suite again, fixing what is said above.")


def test_a_stubborn_tester_repeats_its_tests_on_a_dispute_only(bank):
    p = bank["mbpp/3"]
    previous = "assert is_not_prime(2) == True\nassert is_not_prime(10) == True\n"
    dispute = _again(p, f"{DISPUTE}\n- assert is_not_prime(2) == True: the solution returned False", previous)
    stubborn = HANDLERS["tester"](ask("tester", p, dispute, TeacherRates(stubborn_rate=1.0)))
    assert stubborn["tests"] == previous and stubborn[FLAW] == "stubborn"
    fresh = HANDLERS["tester"](ask("tester", p, dispute, TeacherRates(stubborn_rate=0.0, test_flaw_rate=0.0)))
    assert fresh["tests"] == p.tests.code and FLAW not in fresh
    other = _again(p, "Your tests let mutants of the solution live.", previous)
    assert HANDLERS["tester"](ask("tester", p, other, TeacherRates(stubborn_rate=1.0)))["tests"] == p.tests.code
    # At the realistic rates, re-asks with other prompts roll again: some repeat, some answer afresh.
    labels = Counter(HANDLERS["tester"](ask("tester", p, dispute.replace("returned False", f"returned False ({i})")))
                     .get(FLAW, "-") for i in range(80))
    assert 8 <= labels["stubborn"] <= 35 and labels["-"] >= 25


# ---------------------------------------------------------------- the coder


def test_each_coder_flaw_is_what_its_label_claims(bank):
    rates = TeacherRates(code_flaw_rate=1.0)
    for pid in ("mbpp/3", "mbpp/17", "humaneval/0"):
        p = bank[pid]
        text = given_prompt(p)
        hard = forced("coder", p, text, rates, "hard_coded")["code"]
        assert hard != p.reference and "if (" in hard
        assert run_asserts(hard, p.tests.code if p.source == "mbpp" else "")[0] == 0
        if p.source == "humaneval":
            namespace: dict = {}
            exec(hard + "\n" + p.tests.code, namespace)
            namespace["check"](namespace[p.entry_point])
        assert forced("coder", p, user_text("coder", p), rates, "planted_bug")["code"] != p.reference  # no given tests
        planted = forced("coder", p, text, rates, "planted_bug")["code"]
        compile(planted, pid, "exec")
        assert ast.dump(ast.parse(planted)) != ast.dump(ast.parse(p.reference))
        prose = forced("coder", p, text, rates, "prose")["code"]
        assert prose.startswith("Here is the solution:\n```python\n") and p.reference.strip() in prose
        with pytest.raises(SyntaxError):
            ast.parse(prose)
        misnamed = forced("coder", p, text, rates, "misnamed")
        names = [s.name for s in ast.parse(misnamed["code"]).body if isinstance(s, ast.FunctionDef)]
        assert p.entry_point not in names and misnamed[FLAW].split(":")[1] in names


def test_a_repair_bends_the_previous_code_to_the_failing_asserts(bank):
    p = bank["mbpp/3"]
    previous = "def is_not_prime(n):\n    return n % 2 == 0\n"  # wrong for odd composites: 35, 9
    shown = feedback(TestResult(name="assert is_not_prime(2) == False", outcome="failed", message="assert True == False"),
                     TestResult(name="assert is_not_prime(35) == True", outcome="failed", message="assert False == True"),
                     TestResult(name="assert is_not_prime(10) == True", outcome="passed"))
    prompt = (f"{user_text('coder', p)}\n\n## Your previous solution\n\n```python\n{previous}```\n\n"
              f"## What went wrong\n\n{shown}\n\nFix the root cause and return the whole corrected program.")
    bent = HANDLERS["coder"](ask("coder", p, prompt, TeacherRates(bend_rate=1.0)))
    assert bent[FLAW] == "bent"
    namespace: dict = {}
    exec(bent["code"], namespace)
    f = namespace["is_not_prime"]
    assert f(2) is False and f(35) is True  # the failing asserts pass now
    assert f(9) is False and f(4) is True  # and the old bug is still there (9 is not prime)
    assert HANDLERS["coder"](ask("coder", p, prompt, TeacherRates(bend_rate=0.0)))["code"] == p.reference
    # No previous solution, or no assert it can read: the reference.
    bare = prompt.replace("## Your previous solution", "## Notes")
    assert HANDLERS["coder"](ask("coder", p, bare, TeacherRates(bend_rate=1.0)))["code"] == p.reference
    unreadable = prompt.replace("- assert is_not_prime", "- check is_not_prime")
    assert HANDLERS["coder"](ask("coder", p, unreadable, TeacherRates(bend_rate=1.0)))["code"] == p.reference


# ---------------------------------------------------------------- critic, planner


def test_critic_flaws_break_the_schema_even_through_a_tool_call(serve, bank):
    client = openai.OpenAI(base_url=serve(teacher="realistic", critic_flaw_rate=1.0), api_key="sk-test",
                           max_retries=0, timeout=60)
    shown = feedback(TestResult(name="assert f(1) == 2", outcome="failed", message="assert 3 == 2"))
    tool: ChatCompletionToolParam = {"type": "function", "function": {"name": "CriticAnswer",
                                                                       "parameters": CriticAnswer.model_json_schema()}}
    raw = client.chat.completions.with_raw_response.create(
        model=MODEL, messages=messages("critic", bank["mbpp/2"], "\n" + shown), tools=[tool], n=24,
        tool_choice={"type": "function", "function": {"name": "CriticAnswer"}})
    labels = raw.headers[FLAWS_HEADER].split(",")
    assert {label.split(":")[0] for label in labels} == set(teacher.CRITIC_FLAWS)
    for label, choice in zip(labels, raw.parse().choices, strict=True):
        answer = json.loads(tool_arguments(choice.message))
        assert RAW not in answer and FLAW not in answer
        if label == "accept_failing":
            assert CriticAnswer(**answer).verdict == "accept"
        else:  # unreadable, off_taxonomy: what the agents cannot read
            with pytest.raises(ValidationError):
                CriticAnswer(**answer)
        if label == "unreadable:missing":
            assert "verdict" not in answer
        if label == "off_taxonomy":
            assert answer["verdict"] == "reject" and answer["reason"] == "too_hard"


def test_a_vague_plan(bank):
    p = bank["mbpp/2"]
    plan = forced("planner", p, user_text("planner", p), TeacherRates(plan_flaw_rate=1.0), "vague")
    assert 1 <= len(plan["steps"]) <= 2 and set(plan["steps"]) <= set(teacher.VAGUE_STEPS)


# ---------------------------------------------------------------- rates, seeds, flags


def test_the_realistic_rates_hold_over_mbpp_problems_and_seeds(bank):
    """Counted by label, and checked against behaviour where cheap, over 150 problems and four seeds
    (600 draws a role): the default rates (0.4, 0.3, 0.25) sit above the floors (a third, a quarter,
    a fifth) by more than two standard deviations of such a count."""
    problems = [p for p in bank.values() if p.source == "mbpp"][:150]
    shown = "\n" + feedback(TestResult(name="assert f(1) == 2", outcome="failed", message="assert 3 == 2"))
    tests = coders = critics = 0
    for seed, p in ((s, p) for s in range(4) for p in problems):
        tester = HANDLERS["tester"](ask("tester", p, seed=seed))
        tests += FLAW in tester
        assert (FLAW in tester) == (tester["tests"] != p.tests.code)
        code = HANDLERS["coder"](ask("coder", p, given_prompt(p), seed=seed))
        coders += code["code"] != p.reference
        assert (FLAW in code) == (code["code"] != p.reference)
        critic = HANDLERS["critic"](ask("critic", p, user_text("critic", p, shown), seed=seed))
        try:
            wrong = CriticAnswer(**critic).verdict == "accept"  # a failing run accepted
        except ValidationError:
            wrong = True  # unreadable, or off the taxonomy
        critics += wrong
        assert wrong == (FLAW in critic)
    draws = 4 * len(problems)
    assert tests >= draws / 3 and coders >= draws / 4 and critics >= draws / 5, (tests, coders, critics, draws)


def test_replies_are_seeded(bank):
    problems = [bank[pid] for pid in SAMPLE]

    def labels(seed: int) -> list[str]:
        return [str(HANDLERS[role](ask(role, p, seed=seed, choice=c)).get(FLAW))
                for p in problems for role in ("tester", "coder", "planner") for c in range(4)]

    assert labels(1) == labels(1)
    assert labels(1) != labels(2)
    a = ask("tester", bank["mbpp/3"], seed=4, choice=1)
    assert HANDLERS["tester"](a) == HANDLERS["tester"](replace(a))


def test_the_flags_round_trip_and_the_cli_knows_them():
    config = SimConfig(teacher="realistic", test_flaw_rate=0.5, stubborn_rate=0.0)
    flags = config.to_flags()
    assert flags[flags.index("--teacher") + 1] == "realistic"
    assert flags[flags.index("--test-flaw-rate") + 1] == "0.5" and "--bend-rate" not in flags
    assert "--teacher" not in SimConfig().to_flags()
    from codestill.cli import app

    result = CliRunner().invoke(app, ["sim", "serve", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for flag in ("--teacher", "--test-flaw-rate", "--code-flaw-rate", "--bend-rate", "--critic-flaw-rate",
                 "--plan-flaw-rate", "--stubborn-rate"):
        assert flag in result.output
    bad = CliRunner().invoke(app, ["sim", "serve", "--teacher", "perfect", "--port", "0"])
    assert bad.exit_code != 0
    with pytest.raises(ValidationError):
        SimConfig(critic_flaw_rate=1.5)
