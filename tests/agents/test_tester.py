"""The tester: self-written tests, hidden tests kept out of the prompt, and the sandbox suites."""

from __future__ import annotations

import pytest

from agents import TestsAnswer
from agents.tester import suites, write_tests
from codestill.schemas import ModuleSpec, TestSuite
from tests.agents.conftest import run, scripted
from tools.sandbox._tests import split_asserts

WRITTEN = "assert has_close_elements([1.0, 1.05], 0.1) == True\nassert has_close_elements([], 1.0) == False\n"
WRONG = "def has_close_elements(numbers, threshold):\n    return False\n"


def test_write_tests_returns_a_validated_answer(mbpp, bank):
    model = scripted({"tests": "assert similar_elements((1, 2), (2, 3)) == (2,)", "entry_point": "similar_elements"})
    modules = [ModuleSpec(name="to_set", signature="def to_set(xs: tuple) -> set", description="the set of xs")]
    reply = run(write_tests(model, mbpp, bank["mbpp/2"].reference, modules))
    assert reply.ok and reply.value is not None and reply.value.entry_point == "similar_elements"
    assert model.system.startswith("You are the codestill tester.")
    user = model.user
    assert mbpp.instruction in user and bank["mbpp/2"].reference.strip("\n") in user
    assert "`def to_set(xs: tuple) -> set`: the set of xs" in user
    # visible task tests are shown as examples
    assert "assert set(similar_elements((3, 4, 5, 6),(5, 7, 4, 10))) == set((4, 5))" in user


def test_hidden_tests_never_reach_the_prompt(hidden, bank):
    model = scripted({"tests": WRITTEN})
    run(write_tests(model, hidden, bank["humaneval/0"].reference))
    assert hidden.instruction in model.user
    assert "def check(candidate)" not in model.everything
    assert "assert candidate([1.0, 2.0, 3.9, 4.0, 5.0, 2.2], 0.3) == True" not in model.everything


def test_an_unparsable_reply_is_a_recorded_error(mbpp):
    reply = run(write_tests(scripted('{"entry_point": "f"}', "no"), mbpp, "def f(): pass"))
    assert not reply.ok and reply.error


def test_suites_mbpp_concatenates_written_and_given_asserts(mbpp):
    visible, hidden = suites(mbpp, TestsAnswer(tests="assert similar_elements((1,), (1,)) == (1,)"))
    assert hidden is None and visible.kind == "asserts"
    assert visible.code.startswith("assert similar_elements((1,), (1,)) == (1,)")
    assert mbpp.tests is not None and mbpp.tests.code.strip() in visible.code
    assert len([u for u in split_asserts(visible.code, visible.entry_point) if u.is_test]) == 4


def test_suites_keep_every_check_call(humaneval, bank):
    """Written check-style tests plus the task's check suite: both checks run, each once."""
    written = TestsAnswer(tests="def check(candidate):\n    assert candidate([1.0, 1.05], 0.1) == True\n",
                          entry_point="has_close_elements")
    visible, hidden = suites(humaneval, written)
    assert hidden is None and visible.entry_point is None
    tests = [u.code for u in split_asserts(visible.code, visible.entry_point) if u.is_test]
    assert tests == ["check(has_close_elements)", "check(has_close_elements)"]
    _run(bank["humaneval/0"].reference, visible)  # the reference passes both
    with pytest.raises(AssertionError):
        _run(WRONG, visible)
    # plain asserts with a check suite: the asserts, then the explicit check call
    visible, _ = suites(humaneval, TestsAnswer(tests=WRITTEN))
    tests = [u.code for u in split_asserts(visible.code, visible.entry_point) if u.is_test]
    assert len(tests) == 3 and tests[-1] == "check(has_close_elements)"


def test_suites_with_hidden_tests_keep_them_apart(hidden):
    visible, hidden_suite = suites(hidden, TestsAnswer(tests=WRITTEN, entry_point="has_close_elements"))
    assert hidden_suite == hidden.tests
    assert "def check" not in visible.code and visible.code.strip() == WRITTEN.strip()
    assert visible.entry_point == "has_close_elements"


def test_suites_without_anything_written(mbpp, hidden):
    visible, _ = suites(mbpp, None)
    assert mbpp.tests is not None and visible.code.strip() == mbpp.tests.code.strip()
    visible, hidden_suite = suites(hidden, None)
    assert visible.code == "" and hidden_suite is not None


def _run(program: str, suite: TestSuite) -> None:
    """The suite's units in order, as the sandbox's harness runs them (here, in-process)."""
    namespace: dict = {}
    exec(program, namespace)
    for unit in split_asserts(suite.code, suite.entry_point):
        exec(unit.code.replace("_cs_cmp", "_cmp"), {**namespace, "_cmp": _cmp}, namespace)


def _cmp(ops, *operands):
    import operator
    fns = {"==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le, ">": operator.gt,
           ">=": operator.ge, "in": lambda a, b: a in b, "not in": lambda a, b: a not in b}
    return all(fns[op](a, b) for op, a, b in zip(ops, operands, operands[1:], strict=False))


def test_suites_find_a_decorated_check_and_ignore_one_in_a_string(humaneval):
    """Only a top-level ``def check`` makes the suite HumanEval-style: decorated counts, quoted does not."""
    decorated = TestsAnswer(tests="import functools\n\n@functools.lru_cache(None)\ndef check(candidate):\n"
                                  "    assert candidate([1.0, 1.05], 0.1) == True\n", entry_point="has_close_elements")
    visible, _ = suites(humaneval, decorated)
    tests = [u.code for u in split_asserts(visible.code, visible.entry_point) if u.is_test]
    assert tests.count("check(has_close_elements)") == 2
    quoted = TestsAnswer(tests='NOTE = """\ndef check(candidate):\n"""\nassert has_close_elements([1.0], 0.5) == False\n',
                         entry_point="has_close_elements")
    visible, _ = suites(humaneval, quoted)
    names = [u.name for u in split_asserts(visible.code, visible.entry_point) if u.is_test]
    # a check taken for real would be called right after the written assert, and once more at the end
    assert names[0] == "assert has_close_elements([1.0], 0.5) == False"
    assert names.count("check(has_close_elements)") == 1
