"""The critic: its prompt, the weak-tests rule, and every route of overrule."""

from __future__ import annotations

import re

import pytest

from agents import CriticAnswer
from agents.critic import judge, overrule, weak_tests
from codestill.schemas import Critique, IOCase, TestSuite
from tests.agents.conftest import exec_result, run, scripted

CODE = "def f(x):\n    return x * 2\n"
STRONG = TestSuite(code="assert f(2) == 4\nassert f(0) == 0\n")
WEAK = TestSuite(code="assert isinstance(f(2), int)\nassert f(3) is not None\n")
PASSED = exec_result("passed", ("assert f(2) == 4", "passed", ""), ("assert f(0) == 0", "passed", ""))
FAILED = exec_result("failed", ("assert f(2) == 4", "failed", "got 5"), ("assert f(0) == 0", "passed", ""))
HIDDEN_NAME = "assert f(1000) == 2000"
HIDDEN_FAILED = exec_result("failed", (HIDDEN_NAME, "failed", "got 1999"), ("assert f(7) == 14", "passed", ""),
                            ("assert f(9) == 18", "passed", ""))
HIDDEN_PASSED = exec_result("passed", (HIDDEN_NAME, "passed", ""))
STATUS = re.compile(r"^status: (\w+)[ \t]*$", re.M)


def answer(verdict: str, **kw) -> CriticAnswer:
    return CriticAnswer.model_validate({"verdict": verdict, **kw})


# ---- the prompt ---------------------------------------------------------------------------------

def test_judge_returns_a_validated_answer(mbpp):
    model = scripted({"verdict": "repair", "issues": ["f(2) is 5"], "suggestion": "double it"})
    reply = run(judge(model, mbpp, CODE, STRONG, FAILED))
    assert reply.ok and reply.value == answer("repair", issues=["f(2) is 5"], suggestion="double it")
    assert model.system.startswith("You are the codestill critic.")
    for reason in ("unsolvable", "ambiguous_instruction", "tests_wrong", "unsafe"):
        assert reason in model.system
    assert "weak tests: yes" in model.system
    # the verdict is asked for in its text form, the last thing the model reads
    assert model.user.rstrip().endswith(CriticAnswer.text_format())


def test_prompt_order_and_the_last_status_line_is_the_visible_result(mbpp):
    model = scripted({"verdict": "accept"})
    run(judge(model, mbpp, CODE, STRONG, FAILED, hidden=HIDDEN_PASSED))
    user = model.user
    assert mbpp.instruction in user
    assert user.index(mbpp.instruction) < user.index(CODE.strip()) < user.index("assert f(0) == 0") \
        < user.index("hidden tests: 1/1 passed") < user.index("status: failed")
    # the visible result is the last part of the task; only the answer's form follows it
    assert user.removesuffix(CriticAnswer.text_format()).rstrip().endswith(FAILED.feedback())
    assert STATUS.findall(user)[-1] == "failed"


def test_hidden_results_are_counts_only(hidden):
    model = scripted({"verdict": "accept"})
    run(judge(model, hidden, CODE, STRONG, PASSED, hidden=HIDDEN_FAILED))
    text = model.everything
    assert "hidden tests: 2/3 passed (run status failed)" in text
    assert HIDDEN_NAME not in text and "got 1999" not in text and "def check(candidate)" not in text
    assert STATUS.findall(model.user) == ["passed"]


def test_an_unparsable_reply_is_a_recorded_error(mbpp):
    reply = run(judge(scripted('{"verdict": "maybe"}', "I like it."), mbpp, CODE, STRONG, PASSED))
    assert not reply.ok and reply.value is None and reply.error


# ---- weak tests ---------------------------------------------------------------------------------

@pytest.mark.parametrize("code", [
    "assert isinstance(f(2), int)",
    "assert f(2) is not None\nassert type(f(3)) == int",
    "assert len(f([1, 2])) == 2",
    "assert f(2)\nassert f(3)",
    "assert True",
    "x = f(2)",
    "def check(candidate):\n    assert isinstance(candidate(1), int)\n",
    "assert f(2) != 5",
])
def test_weak_tests_are_found(code):
    assert weak_tests(TestSuite(code=code)) is not None


@pytest.mark.parametrize("code", [
    "assert f(2) == 4",
    "assert isinstance(f(2), int)\nassert f(2) == 4",
    "assert is_prime(7)\nassert not is_prime(8)",
    "import math\nassert math.isclose(area(2), 12.566, rel_tol=1e-3)",
    "def check(candidate):\n    assert candidate(1) == 2\n",
    "assert f(None) is None",
    "assert abs(f(2) - 4.0) < 1e-9",
])
def test_real_tests_are_not_weak(code):
    assert weak_tests(TestSuite(code=code)) is None


def test_io_suites_and_the_bank_are_not_weak(bank):
    assert weak_tests(TestSuite(kind="io", cases=(IOCase(input="1", output="2"),))) is None
    assert [p.id for p in bank.values() if weak_tests(p.tests) is not None] == []
    assert "parse" in (weak_tests(TestSuite(code="assert f(2) ==")) or "")


# ---- overrule: every route -----------------------------------------------------------------------

def test_accept_stands_when_strong_tests_pass():
    assert overrule(answer("accept"), PASSED, None, STRONG) == Critique(verdict="accept")
    assert overrule(answer("accept"), PASSED, HIDDEN_PASSED, STRONG) == Critique(verdict="accept")


def test_a_failed_result_is_never_accepted():
    c = overrule(answer("accept"), FAILED, None, STRONG)
    assert c.verdict == "repair" and not c.weak_tests
    assert any("1/2 passed" in i for i in c.issues) and "assert f(2) == 4: failed: got 5" in c.issues


def test_a_hidden_failure_blocks_accept_without_showing_hidden_tests():
    c = overrule(answer("accept"), PASSED, HIDDEN_FAILED, STRONG)
    assert c.verdict == "repair"
    assert any("hidden tests: 2/3 passed" in i for i in c.issues)
    assert not any(HIDDEN_NAME in i or "got 1999" in i for i in c.issues)


def test_weak_tests_turn_accept_into_a_tester_repair():
    c = overrule(answer("accept"), PASSED, None, WEAK)
    assert c.verdict == "repair" and c.weak_tests and "too weak" in c.issues[0]
    flagged = overrule(answer("accept", weak_tests=True, issues=["only one input"]), PASSED, None, STRONG)
    assert flagged.verdict == "repair" and flagged.weak_tests and flagged.issues == ("only one input",)


def test_the_model_repair_of_failing_code_keeps_its_issues_and_adds_the_failures():
    c = overrule(answer("repair", issues=["doubles wrong"], suggestion="use * 2"), FAILED, None, STRONG)
    assert c.verdict == "repair" and c.issues[0] == "doubles wrong" and c.suggestion == "use * 2"
    assert "assert f(2) == 4: failed: got 5" in c.issues


def test_replan_stands_on_a_failing_result():
    c = overrule(answer("replan", issues=["wrong approach"]), FAILED, None, STRONG)
    assert c.verdict == "replan" and c.issues[0] == "wrong approach" and len(c.issues) > 1


def test_reject_keeps_its_reason_or_gets_unsolvable():
    c = overrule(answer("reject", reason="tests_wrong", issues=["f(2) cannot be 5"]), FAILED, None, STRONG)
    assert c == Critique(verdict="reject", reason="tests_wrong", issues=("f(2) cannot be 5",))
    assert overrule(answer("reject"), PASSED, None, STRONG).reason == "unsolvable"


def test_an_unreadable_reply_is_never_an_accept():
    closed = overrule(None, PASSED, None, STRONG, critic_error="no JSON object found in the reply")
    assert closed.verdict == "reject" and closed.reason == "model_failure"
    assert closed.issues == ("the critic's reply could not be read: no JSON object found in the reply",)
    # wave 1's rule, kept only for bench/data_precision.py's comparison
    legacy = overrule(None, PASSED, None, STRONG, critic_error="x", fail_closed=False)
    assert legacy == Critique(verdict="accept")
    bad = overrule(None, FAILED, None, STRONG, critic_error="no JSON object found in the reply")
    assert bad.verdict == "repair"
    assert bad.issues[0] == "the critic's reply could not be read: no JSON object found in the reply"
    assert "assert f(2) == 4: failed: got 5" in bad.issues
    weak = overrule(None, PASSED, None, WEAK)
    assert weak.verdict == "repair" and weak.weak_tests
    assert any(i.startswith("the critic's reply could not be read") for i in weak.issues)
    assert overrule(None, PASSED, HIDDEN_FAILED, STRONG).verdict == "repair"


def test_an_infra_error_is_a_repair_whatever_the_model_says():
    infra = exec_result("infra_error", message="the container died")
    for a in (answer("accept"), answer("reject", reason="unsafe"), None):
        c = overrule(a, infra, None, STRONG)
        assert c.verdict == "repair" and "the container died" in c.issues[0]
    assert overrule(answer("accept"), PASSED, exec_result("infra_error"), STRONG).verdict == "repair"


def test_a_repair_or_replan_of_passing_code_is_the_critics_call():
    c = overrule(answer("repair", issues=["special-cases f(2)"]), PASSED, None, STRONG)
    assert c == Critique(verdict="repair", issues=("special-cases f(2)",))
    assert overrule(answer("replan"), PASSED, None, STRONG).verdict == "replan"
