"""The deterministic suite checks (agents/_suite.py): what a suite must be before its verdict counts,
and code that answers a test's exact input with its exact expected value."""

from __future__ import annotations

import pytest

from agents._suite import distinct_inputs, refusal, special_cases

NAMES = frozenset({"f", "helper"})

REFUSED = {
    "does_not_parse": ("assert f(1 == 2\n", "do not parse"),
    "defines_the_entry_point": ("def f(x):\n    return x\nassert f(1) == 1\nassert f(2) == 2\nassert f(3) == 3\n",
                                "define or assign `f`"),
    "assigns_a_helper_of_the_code": ("helper = abs\nassert f(1) == 1\nassert f(2) == 2\nassert f(3) == 3\n",
                                     "`helper`"),
    "imports_over_the_entry_point": ("from math import fabs as f\nassert f(1) == 1\nassert f(2) == 2\n"
                                     "assert f(3) == 3\n", "`f`"),
    "walrus_inside_an_assert": ("assert (f := abs)(1) == 1\nassert f(2) == 2\nassert f(3) == 3\n", "`f`"),
    "globals_write": ("globals()['f'] = abs\nassert f(1) == 1\nassert f(2) == 2\nassert f(3) == 3\n", "`f`"),
    "uncalled_test_functions": ("def test_one():\n    assert f(1) == 1\n    assert f(2) == 2\n    assert f(3) == 3\n",
                                "nothing calls them"),
    "tautology": ("assert f(1) == f(1)\nassert f(2) == f(2)\nassert f(3) == f(3)\n", "no assert compares"),
    "shape_only": ("assert isinstance(f(1), int)\nassert len(f(2)) == 3\nassert f(3) is not None\n",
                   "no assert compares"),
    "excluding_one_value": ("assert f(1) != 0\nassert f(2) != 0\nassert f(3) != 0\n", "no assert compares"),
    "a_helper_of_the_tests": ("def g(x):\n    return x\nassert g(1) == 1\nassert g(2) == 2\nassert g(3) == 3\n",
                              "no assert compares"),
    "an_oracle_of_the_tests": ("def expect(x):\n    return x\nassert f(1) == expect(1)\nassert f(2) == expect(2)\n"
                               "assert f(3) == expect(3)\n", "no assert compares"),
    "variables_not_values": ("x = 1\nassert f(x) == 1\nassert f(x) == 1\nassert f(x) == 1\n", "no assert compares"),
    "one_input_three_times": ("assert f([]) == []\nassert f([]) == []\nassert f([]) == []\n", "only 1 distinct"),
}


@pytest.mark.parametrize("case", list(REFUSED), ids=list(REFUSED))
def test_a_suite_that_cannot_judge_is_refused(case: str):
    code, why = REFUSED[case]
    found = refusal(code, "f", NAMES, 3)
    assert found is not None and why in found, found


ACCEPTED = {
    "plain_asserts": "assert f(1) == 2\nassert f(-1) == 0\nassert f(10) == 11\n",
    "floats_and_wrappers": "import math\nassert math.isclose(f(1.5), 2.5)\nassert sorted(f([2, 1])) == [1, 2]\n"
                           "assert set(f((3, 4))) == {3, 4}\n",
    "bool_both_ways": "assert f(7)\nassert not f(8)\nassert f(9) is False\n",
    "builtins_in_arguments": "assert f(float('inf')) == float('inf')\nassert f([0] * 3) == 0\nassert f(range(2)) == 1\n",
    "humaneval_check": "def check(candidate):\n    assert candidate([1]) == 1\n    assert candidate([]) == 0\n"
                       "    assert candidate([2, 2]) == 4\n",
    "a_called_test_function": "def test_f():\n    assert f(1) == 2\n    assert f(2) == 3\n    assert f(3) == 4\n\n"
                              "test_f()\n",
}


@pytest.mark.parametrize("case", list(ACCEPTED), ids=list(ACCEPTED))
def test_a_suite_with_enough_concrete_checks_is_accepted(case: str):
    assert refusal(ACCEPTED[case], "f", NAMES, 3) is None


def test_the_tasks_own_tests_count_toward_the_inputs():
    assert refusal("assert f(1) == 2\n", "f", NAMES, 3) is not None
    assert refusal("assert f(1) == 2\n", "f", NAMES, 3, given_inputs=2) is None
    assert distinct_inputs("assert f(1) == 2\nassert f(1) == 2\nassert f(x=2) == 3\n", "f") == 2


def test_special_cased_inputs_are_found_in_every_spelling():
    tests = "assert f((3, 4), [5]) == (4,)\nassert f((1, 9), [2]) == (9,)\nassert f((2, 2), []) == (2,)\n"
    for guard in ("(a, b) == ((3, 4), [5])", "a == (3, 4) and b == [5]", "((3, 4), [5]) == (a, b)"):
        code = f"def f(a, b):\n    if {guard}:\n        return (4,)\n    return tuple(a)\n"
        assert special_cases(code, tests, "f") == ["`f((3, 4), [5])` is answered by a literal on line 2"], guard
    one = "def f(xs):\n    if (xs,) == (['python'],):\n        return 6\n    return len(xs[1])\n"
    assert special_cases(one, "assert f(['python']) == 6\n", "f") == ["`f(['python'])` is answered by a literal "
                                                                        "on line 2"]


def test_base_cases_and_other_values_are_not_special_cases():
    factorial = "def f(n):\n    if n == 0:\n        return 1\n    return n * f(n - 1)\n"
    assert special_cases(factorial, "assert f(0) == 1\nassert f(5) == 120\n", "f") == []
    other_value = "def f(n):\n    if n == 5:\n        return 7\n    return n * 2\n"
    assert special_cases(other_value, "assert f(5) == 10\n", "f") == []  # not the test's answer
    general = "def f(xs):\n    if not xs:\n        return 0\n    return max(xs)\n"
    assert special_cases(general, "assert f([]) == 0\nassert f([4, 9]) == 9\n", "f") == []
