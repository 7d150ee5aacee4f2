"""Tests too weak to prove anything: the deterministic half of the critic.

A suite is weak when nothing in it compares the code's output with an expected value: it has no
``assert`` at all, or every ``assert`` only checks a type (``isinstance``, ``type(...) ==``), a length,
``is not None`` / ``!= None``, a constant, or the truthiness of a call. Such tests pass wrong code.
One exception: truthiness asserts of both polarities (``assert is_prime(7)`` and ``assert not
is_prime(8)``) do test a predicate's value, as many MBPP suites do.

A stdin/stdout suite compares whole outputs, so its weakness is in what it expects (``weak_io``): no case,
every case expecting no output, or several inputs all expecting the same output. A program that prints
nothing, or always that one text, passes such a suite. Outputs are compared as the sandbox compares them
(``io_lines``).
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Sequence
from typing import Literal

from codestill.pysrc import parse_quietly
from codestill.schemas import IOCase, TestSuite

Strength = Literal["value", "true", "false", "shape"]
# Calls that only look at a value's type or size, and names of calls that compare two values (shared with
# ``agents._suite``, which judges whether an assert checks a value of the entry point).
SHAPE_CALLS = frozenset({"isinstance", "issubclass", "callable", "hasattr", "type", "len", "id"})
VALUE_WORDS = ("close", "equal", "approx", "same")
_EXCLUDING = (ast.NotEq, ast.IsNot, ast.NotIn)


def weak_tests(tests: TestSuite) -> str | None:
    """Why ``tests`` are too weak to show the code is right, or None if they are not."""
    return weak_io(tests.cases) if tests.kind == "io" else _weak_code(tests.code)


def io_lines(text: str) -> tuple[str, ...]:
    """``text`` as the sandbox compares a program's output with a case's (``tools/sandbox/_runner.py``
    ``_run_io_case``): its lines without the spaces at their ends, without blank lines at the end."""
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").split("\n")]
    while lines and not lines[-1]:
        lines.pop()
    return tuple(lines)


def weak_io(cases: Sequence[IOCase]) -> str | None:
    """Why stdin/stdout ``cases`` cannot tell a right program from a wrong one, or None."""
    if not cases:
        return "there is no stdin/stdout case"
    outputs = {io_lines(c.output) for c in cases}
    if outputs == {()}:
        return "every case expects the program to print nothing, which a program that does nothing passes"
    if len(outputs) == 1 and len({io_lines(c.input) for c in cases}) > 1:
        shown = "\n".join(next(iter(outputs)))
        return (f"every case expects the same output ({shown[:80]!r}), which a program that always prints it "
                "passes: add inputs whose answers differ")
    return None


@functools.lru_cache(maxsize=1024)
def _weak_code(code: str) -> str | None:
    # The critic judges a branch's suite again after every repair, and parsing was 9 % of the event
    # loop's CPU samples in the solve benchmark; the answer depends on the text alone.
    try:
        tree = parse_quietly(code)
    except (SyntaxError, ValueError) as e:
        return f"the tests do not parse: {e}"
    asserts = [n for n in ast.walk(tree) if isinstance(n, ast.Assert)]
    if not asserts:
        return "the tests contain no assert statement"
    found = {_strength(a.test) for a in asserts}
    if "value" in found or {"true", "false"} <= found:
        return None
    return ("no assert compares a result with an expected value: they only check types, lengths, "
            "`is not None` or truthiness, which wrong code passes as well")


def call_name(func: ast.expr) -> str:
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""


def _is_shape_call(node: ast.expr) -> bool:
    """A call that only looks at a value's type or size."""
    return isinstance(node, ast.Call) and call_name(node.func) in SHAPE_CALLS


def _strength(test: ast.expr) -> Strength:
    if isinstance(test, ast.BoolOp):
        found: list[Strength] = [_strength(v) for v in test.values]
        return "value" if "value" in found else found[0]
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        inner = _strength(test.operand)
        return "false" if inner == "true" else "true" if inner == "false" else inner
    if isinstance(test, ast.Compare):
        return _compare(test)
    if isinstance(test, ast.Call):
        name = call_name(test.func)
        if _is_shape_call(test):
            return "shape"
        if name in ("all", "any") and test.args and isinstance(test.args[0], ast.GeneratorExp | ast.ListComp):
            return _strength(test.args[0].elt)
        if any(w in name.lower() for w in VALUE_WORDS):
            return "value"  # math.isclose(f(x), 2.5), np.array_equal(...)
        return "true"
    return "shape" if isinstance(test, ast.Constant) else "true"


def _compare(test: ast.Compare) -> Strength:
    operands = [test.left, *test.comparators]
    if all(isinstance(op, _EXCLUDING) for op in test.ops):
        return "shape"  # `is not None`, `!= 0`: rules out one value, expects none
    if all(isinstance(o, ast.Constant) for o in operands):
        return "shape"  # 1 == 1
    if any(_is_shape_call(o) for o in operands) and all(
            _is_shape_call(o) or isinstance(o, ast.Constant | ast.Name | ast.Attribute) for o in operands):
        return "shape"  # len(f(x)) == 3, type(f(x)) == int
    return "value"
