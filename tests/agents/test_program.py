"""Program tasks (a script reading stdin and printing): which tasks are programs, the tester's
"Input:"/"Output:" reply form and its parser, the io suites, the io checks of the gates' deterministic
halves, and what the coder, tester and critic are told."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from agents import TestsAnswer
from agents._answers import IOTestsAnswer, io_text
from agents._common import is_program
from agents._suite import io_refusal, io_special_cases
from agents._weak import weak_io, weak_tests
from agents.coder import draft, write
from agents.critic import judge
from agents.tester import suites, write_tests
from codestill.schemas import IOCase, Origin, Plan, Task, TestSuite
from tests.agents.conftest import exec_result, run, scripted

SUM = Task(id="p/sum", instruction="Read two integers on one line and print their sum.",
           origin=Origin(category="program"))
GIVEN = TestSuite(kind="io", cases=(IOCase(input="1 2\n", output="3\n"),))
PLAN = Plan(steps=("Read the two numbers.", "Print their sum."))
REPLY = """Here are the cases.

Input:
```
1 2
```
Output:
```
3
```

**Input (stdin):**
```text
-4 4
```
**Expected output:**
```
0
```

Case 3 - Input:
````
```` is not a fence here
````
Output:
```
x
```
"""


def cases(*pairs: tuple[str, str]) -> tuple[IOCase, ...]:
    return tuple(IOCase(input=i, output=o) for i, o in pairs)


# ---- which tasks are programs -----------------------------------------------------------------------

def test_a_task_is_a_program_by_its_category_or_its_given_cases():
    assert is_program(SUM)
    assert is_program(Task(id="p", instruction="x", tests=GIVEN))
    assert not is_program(Task(id="f", instruction="x", origin=Origin(category="function")))
    assert not is_program(Task(id="f", instruction="x", tests=TestSuite(code="assert f() == 1")))
    assert not is_program(Task(id="f", instruction="x"))


# ---- the reply form ---------------------------------------------------------------------------------

def test_the_io_reply_form_is_read_with_its_labels_longer_fences_and_empty_inputs():
    found = IOTestsAnswer.from_text(REPLY + "\nInput:\n```\n```\nOutput:\n```\nnothing read\n```\n")
    assert found == {"cases": [{"input": "1 2\n", "output": "3\n"}, {"input": "-4 4\n", "output": "0\n"},
                               {"input": "```` is not a fence here\n", "output": "x\n"},
                               {"input": "", "output": "nothing read\n"}]}


@pytest.mark.parametrize("text", [
    "",
    "No cases, sorry.",
    "```\n1 2\n```\n```\n3\n```\n",  # blocks without labels
    "Input:\n```\n1 2\n```\n",  # an input with no output
    "Output:\n```\n3\n```\nInput:\n```\n1 2\n```\n",  # an output before any input
    "Input:\n```\n1 2\n```\nOutput:\n```\n3\n",  # the output's fence never closes (a cut-off reply)
    "Input: `1 2`\nOutput: `3`\n",  # inline code is no block
])
def test_malformed_io_replies_give_no_answer(text):
    assert IOTestsAnswer.from_text(text) is None


def test_a_half_formed_reply_keeps_only_its_complete_cases():
    text = "Input:\n```\n5\n```\nInput:\n```\n6\n```\nOutput:\n```\n36\n```\nOutput:\n```\nstray\n```\n"
    assert IOTestsAnswer.from_text(text) == {"cases": [{"input": "6\n", "output": "36\n"}]}


def test_json_cases_are_read_and_normalised_and_an_empty_list_is_no_answer():
    answer = IOTestsAnswer.model_validate({"cases": [{"input": "1 2", "output": "3"},
                                                     {"stdin": "5\r\n6", "stdout": "11\r\n"}]})
    assert answer.to_cases() == cases(("1 2\n", "3\n"), ("5\n6\n", "11\n"))
    assert answer.entry_point is None
    with pytest.raises(ValidationError):
        IOTestsAnswer.model_validate({"cases": []})


def test_the_text_form_reads_back_to_the_same_cases():
    tricky = cases(("1 2\n", "3\n"), ("", "none\n"), ("a```b\n", "```\n"), ("\n\nx\n", "  padded\n"))
    answer = IOTestsAnswer.model_validate(IOTestsAnswer.from_text(io_text(tricky)))
    assert answer.to_cases() == tricky and answer.tests == io_text(tricky)


# ---- the suites -------------------------------------------------------------------------------------

def test_a_program_gets_an_io_suite_of_the_written_then_the_given_cases():
    task = SUM.model_copy(update={"tests": GIVEN})
    written = IOTestsAnswer.model_validate({"cases": [{"input": "5 5", "output": "10"}, {"input": "1 2", "output": "3"}]})
    visible, hidden = suites(task, written)
    assert hidden is None and visible.kind == "io" and visible.entry_point is None
    assert visible.cases == cases(("5 5\n", "10\n"), ("1 2\n", "3\n"))  # the given case, written too, runs once
    hidden_task = task.model_copy(update={"hidden_tests": True})
    visible, hidden = suites(hidden_task, written)
    assert hidden == GIVEN and visible.cases == cases(("5 5\n", "10\n"), ("1 2\n", "3\n"))


def test_a_program_with_nothing_written_runs_its_given_cases_or_nothing():
    visible, _ = suites(SUM.model_copy(update={"tests": GIVEN}), None)
    assert visible == GIVEN
    visible, _ = suites(SUM, None)
    assert visible == TestSuite(kind="asserts", code="")  # refused by the gates: nothing to judge with


def test_function_tasks_keep_their_asserts_suites(mbpp):
    visible, _ = suites(mbpp, TestsAnswer(tests="assert similar_elements((1,), (1,)) == (1,)"))
    assert visible.kind == "asserts" and "similar_elements((1,), (1,))" in visible.code


# ---- the deterministic checks -----------------------------------------------------------------------

def test_weak_io_cases():
    assert weak_io(()) is not None
    assert "print nothing" in (weak_io(cases(("1\n", ""), ("2\n", "\n"))) or "")
    assert "same output" in (weak_io(cases(("1\n", "True\n"), ("2\n", "True  \n\n"))) or "")
    assert weak_io(cases(("1\n", "True\n"), ("2\n", "False\n"))) is None
    assert weak_io(cases(("1\n", "2\n"),)) is None
    assert weak_tests(TestSuite(kind="io", cases=cases(("1\n", "7\n"), ("2\n", "7\n")))) is not None


def test_io_refusals():
    good = cases(("1 2\n", "3\n"), ("0 0\n", "0\n"), ("-1 5\n", "4\n"))
    assert io_refusal(good, 3) is None
    assert "only 2 distinct input" in (io_refusal(good[:2], 3) or "")
    assert io_refusal(good[:2], 3, given_inputs=1) is None
    assert "only 2 distinct" in (io_refusal((*good[:2], IOCase(input="1 2  \n", output="3\n")), 3) or "")
    assert "different expected outputs" in (io_refusal((*good, IOCase(input="1 2", output="4")), 3) or "")
    assert "same output" in (io_refusal(cases(("1\n", "x\n"), ("2\n", "x\n"), ("3\n", "x\n")), 3) or "")
    assert "no stdin/stdout case" in (io_refusal((), 3) or "")


def test_a_program_that_prints_a_case_answer_for_its_input_special_cases_it():
    suite = cases(("3 4\n", "7\n"), ("10 -2\n", "8\n"), ("0 0\n", "0\n"))
    honest = "import sys\n\ndef main():\n    a, b = map(int, sys.stdin.read().split())\n    print(a + b)\n\nmain()\n"
    bent = honest.replace("    a, b =", "    data = sys.stdin.read()\n    if data.strip() == '3 4':\n"
                                          "        print(7)\n        return\n    a, b =").replace(
        "map(int, sys.stdin.read().split())", "map(int, data.split())")
    assert io_special_cases(honest, suite) == []
    assert io_special_cases(bent, suite) == ["the input '3 4' is answered by a literal on line 6"]
    # a number the logic uses is no string compared with the input; plain inputs are left alone
    assert io_special_cases("n = int(input())\nprint(n % 10 if n != 10 else 1)\n", cases(("10\n", "1\n"))) == []
    assert io_special_cases("if input() == '0':\n    print(0)\n", cases(("0\n", "0\n"))) == []


# ---- what each role is told -------------------------------------------------------------------------

def test_the_coder_gets_the_program_rules_only_for_a_program(mbpp):
    code = {"code": "import sys\nprint(sum(map(int, sys.stdin.read().split())))\n"}
    for ask in (lambda m: draft(m, SUM, PLAN), lambda m: write(m, SUM, PLAN, [])):
        model = scripted(code)
        reply = run(ask(model))
        assert reply.ok and "## This task asks for a program" in model.user and 'if __name__ == "__main__":' in model.user
    model = scripted({"code": "def similar_elements(a, b):\n    return a\n"})
    run(draft(model, mbpp, PLAN))
    assert "asks for a program" not in model.everything


def test_the_tester_writes_io_cases_for_a_program_and_is_told_how():
    model = scripted(REPLY)
    reply = run(write_tests(model, SUM, "print(3)\n"))
    assert isinstance(reply.value, IOTestsAnswer) and len(reply.value.cases) == 3
    assert "write stdin/stdout cases, not asserts" in model.user and model.user.rstrip().endswith("```")
    assert "Input:" in model.user and "Output:" in model.user  # the reply form comes last
    blind = scripted(REPLY)
    run(write_tests(blind, SUM, None, sample=2))
    assert "The solution is not shown to you" in blind.user and "stdin/stdout cases" in blind.user


def test_an_unreadable_io_reply_is_a_recorded_error():
    reply = run(write_tests(scripted("I cannot think of any.", "Still none."), SUM, "print(3)\n"))
    assert not reply.ok and reply.error


def test_the_critic_is_told_that_reading_and_printing_is_the_task(mbpp):
    suite = TestSuite(kind="io", cases=cases(("1 2\n", "3\n")))
    model = scripted("Verdict: accept\nIssues:\n- none")
    run(judge(model, SUM, "print(3)\n", suite, exec_result("passed", ("case 0: stdin '1 2\\n'", "passed", ""))))
    assert "is not a flaw here" in model.user and "input:\n1 2\n" in model.user
    plain = scripted("Verdict: accept\nIssues:\n- none")
    run(judge(plain, mbpp, "def f(): pass\n", TestSuite(code="assert f() is None"), exec_result()))
    assert "asks for a program" not in plain.user
