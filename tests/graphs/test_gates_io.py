"""The strict gates (graphs/_verify.py) on a program task: stdin/stdout cases instead of asserts, each
gate against the teacher error it exists for, on the sandbox's harness (as test_gates.py does for functions).

A scripted model here never improves unless it is told why, so a test that passes shows that the
gate's message got through.
"""

from __future__ import annotations

from typing import Any

import pytest

from codestill.schemas import DISPUTE, IOCase, Origin, Task, TestSuite
from graphs._adequacy import plumbing_lines, sample_mutants
from tests.graphs.conftest import RoleModel
from tests.graphs.test_gates import prompts_of_tester, run
from tests.graphs.test_solve import answers

TASK = Task(id="p/max", instruction="Read two integers, one per line, from standard input and print the larger.",
            origin=Origin(category="program"))
RIGHT = '''import sys


def bigger(a: int, b: int) -> int:
    """The larger of a and b."""
    if a >= b:
        return a
    return b


def main() -> None:
    a, b = (int(x) for x in sys.stdin.read().split())
    print(bigger(a, b))


if __name__ == "__main__":
    main()
'''
WRONG = RIGHT.replace("        return a\n    return b", "        return b\n    return a")
STRONG = [("1\n2\n", "2\n"), ("5\n3\n", "5\n"), ("-1\n-4\n", "-1\n"), ("7\n7\n", "7\n")]
DECOMPOSED = {"modules": [{"name": "bigger", "signature": "def bigger(a: int, b: int) -> int", "description": "The larger."},
                          {"name": "main", "signature": "def main() -> None", "description": "Read, print."}]}


def io(pairs: list[tuple[str, str]]) -> dict:
    return {"cases": [{"input": i, "output": o} for i, o in pairs]}


def gated(coder: Any = RIGHT, tester: Any = None, critic: Any = None) -> RoleModel:
    base = answers(coder=coder, critic=critic, tester=tester if tester is not None else io(STRONG))

    def answer(role: str, text: str) -> Any:
        return DECOMPOSED if role == "decomposer" else base(role, text)
    return RoleModel(answer=answer)


def only_when_told(bad: list[tuple[str, str]], told: str) -> Any:
    def tester(text: str) -> Any:
        return io(STRONG if "## Why you are asked again" in text and told in text else bad)
    return tester


FLAWED = {
    "too_few_inputs": (STRONG[:2], "only 2 distinct input(s)"),
    "one_output_for_every_input": ([("1\n2\n", "2\n"), ("0\n2\n", "2\n"), ("2\n-5\n", "2\n")], "the same output"),
    "nothing_printed": ([("1\n2\n", ""), ("5\n3\n", ""), ("0\n0\n", "")], "print nothing"),
    "contradicting_itself": ([*STRONG, ("5\n3\n", "3\n")], "different expected outputs"),
}


def test_each_weak_io_suite_goes_back_to_the_tester_with_the_reason(tmp_path):
    for name, (bad, reason) in FLAWED.items():
        model = gated(tester=only_when_told(bad, reason))
        t = run(tmp_path / name, model, task=TASK)
        assert t.verdict == "accepted", (name, t.reason)
        first = t.attempts[0]
        assert first.critique.weak_tests and reason in first.critique.issues[0], (name, first.critique)
        assert first.result is None, name  # refused before it ran
        assert t.attempts[-1].tests.kind == "io" and len(t.attempts[-1].tests.cases) == 4, name


def test_a_program_whose_cases_catch_its_bug_is_never_accepted(tmp_path):
    model = gated(coder=WRONG, critic={"verdict": "accept"})  # an over-confident critic, a coder that never learns
    t = run(tmp_path, model, task=TASK, max_replans=0)
    assert t.verdict == "rejected" and t.final_code is None, t.reason
    ran = [a for a in t.attempts if a.result is not None]
    assert ran and all(a.tests.kind == "io" and not a.result.passed for a in ran)
    assert all(a.critique.verdict != "accept" for a in t.attempts)


def test_a_wrong_expected_output_is_disputed_and_rederived(tmp_path):
    wrong = [*STRONG[:1], ("5\n3\n", "3\n"), *STRONG[2:]]

    def tester(text: str) -> Any:
        return io(STRONG if DISPUTE in text and "stdin '5\\n3\\n': expected output '3\\n'" in text else wrong)
    model = gated(tester=tester)
    t = run(tmp_path, model, task=TASK)
    assert t.verdict == "accepted" and t.final_code == RIGHT, t.reason
    coder = [text for role, text in model.seen if role == "coder"]
    assert not any("status: failed" in p for p in coder)  # the right program was never "repaired" toward the wrong case
    dispute = next(p for p in prompts_of_tester(model) if DISPUTE in p)
    assert "expected output for each input" in dispute and "got" not in dispute  # not what the program printed


def test_a_blind_sample_that_disagrees_makes_a_dispute(tmp_path):
    """The program and the first suite share a wrong answer; only the blind sample disagrees."""
    shared = [("1\n2\n", "1\n"), ("5\n3\n", "3\n"), ("-1\n-4\n", "-4\n"), ("7\n7\n", "7\n")]

    def tester(text: str) -> Any:
        return io(STRONG if "The solution is not shown to you" in text or DISPUTE in text else shared)
    model = gated(coder=lambda text: RIGHT if "status: failed" in text else WRONG, tester=tester,
                  critic={"verdict": "accept"})
    alone = run(tmp_path / "one", model, task=TASK, tester_samples=1)
    assert alone.verdict == "accepted" and alone.final_code == WRONG  # one sample cannot see it
    model.seen.clear()
    t = run(tmp_path / "two", model, task=TASK, tester_samples=2)
    assert t.verdict == "accepted" and t.final_code == RIGHT, t.reason
    assert any(DISPUTE in p for p in prompts_of_tester(model))
    assert len(t.attempts[0].tests.cases) == 7  # both samples' cases, the one they share once


def test_a_program_that_special_cases_a_case_is_repaired(tmp_path):
    bent = RIGHT.replace("    a, b = (int(x) for x in sys.stdin.read().split())",
                         "    data = sys.stdin.read()\n    if data == '5\\n3\\n':\n        print(5)\n        return\n"
                         "    a, b = (int(x) for x in data.split())")
    model = gated(coder=lambda text: RIGHT if "special-cases a test" in text else bent, critic={"verdict": "accept"})
    t = run(tmp_path, model, task=TASK)
    assert t.verdict == "accepted" and t.final_code == RIGHT, t.reason
    first = t.attempts[0]
    assert first.result.passed and first.critique.verdict == "repair"
    assert "the input '5\\n3' is answered by a literal" in first.critique.issues[0]


def test_a_crash_is_the_programs_and_a_script_needs_no_function(tmp_path):
    crashing = RIGHT.replace("print(bigger(a, b))", "print(biger(a, b))")
    flat = "import sys\n\na, b = map(int, sys.stdin.read().split())\nprint(max(a, b))\n"
    model = gated(coder=lambda text: flat if "status: error" in text else crashing)
    t = run(tmp_path, model, task=TASK)
    assert t.verdict == "accepted" and t.final_code == flat, t.reason
    first = t.attempts[0]
    assert first.result.status == "error" and "NameError" in first.result.tests[0].message
    assert not first.critique.weak_tests and len(prompts_of_tester(model)) == 1  # the tester was not blamed


def test_mutants_leave_the_plumbing_alone_and_a_suite_they_survive_goes_back(tmp_path):
    skipped = plumbing_lines(RIGHT)
    assert skipped == {12, 16}  # the line reading stdin, the main guard
    assert all(f"(line {n})" not in what for _, what in sample_mutants(RIGHT, 50, skipped) for n in skipped)
    assert any("(line 16)" in what for _, what in sample_mutants(RIGHT, 50))
    ties = [("1\n1\n", "1\n"), ("2\n2\n", "2\n"), ("3\n3\n", "3\n")]  # three inputs, nothing about the order
    model = gated(tester=only_when_told(ties, "changed versions of the solution pass"))
    t = run(tmp_path, model, task=TASK)
    assert t.verdict == "accepted" and t.mutation_score is not None and t.mutation_score >= 0.6, t.reason
    first = t.attempts[0]
    # three mutants judged, one killed: the main guard's mutant, which any case kills, was not counted (2/4)
    assert first.result.passed and first.critique.weak_tests and first.mutation_score == pytest.approx(1 / 3)
    again = prompts_of_tester(model)[1]
    assert "`if a >= b:` -> `if a > b:`" in again and "`if __name__" not in again


def test_hidden_io_cases_judge_the_program_but_never_reach_a_prompt(tmp_path):
    hidden = TestSuite(kind="io", cases=(IOCase(input="123\n-456\n", output="123\n"),
                                         IOCase(input="-9\n-8\n", output="-8\n")))
    task = TASK.model_copy(update={"tests": hidden, "hidden_tests": True})
    small = RIGHT.replace("    if a >= b:", "    if a >= b and a < 100:")  # right on every visible case
    model = gated(coder=lambda text: RIGHT if "Held-back tests" in text else small)
    t = run(tmp_path, model, task=task)
    assert t.verdict == "accepted" and t.final_code == RIGHT, t.reason
    first = t.attempts[0]
    assert first.result.passed and first.critique.verdict == "repair"  # its own cases passed, the hidden did not
    assert all("123" not in text and "-456" not in text for _, text in model.seen)
