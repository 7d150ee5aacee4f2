"""Test suites as the realistic teacher reads and spoils them (``_teacher``).

``read_suite`` reads a suite (MBPP's top-level asserts, HumanEval's ``def check(candidate)`` with
``candidate`` read as the entry point, the tester's own extra asserts) into its imports and its
``Case``s: the asserts that call the entry point and name nothing but builtins and imports.
``flawed`` writes one of the flawed suites a real tester writes (labels ``kind`` or ``kind:variant``):

    wrong_values:mutant      expected values taken from a mutant of the reference (``tools.mutants``)
                             wherever its output differs (run in a child process: ``_mutant_runs``)
    wrong_values:perturbed   the mutant agreed everywhere (or was not run): one expected value changed
                             (int+1, bool flipped, an element dropped...), or one ``==`` turned ``!=``
    tautology                ``assert f(x) == f(x)``
    shape_only               ``isinstance(f(x), T)`` / ``len(f(x)) == n`` only
    uncalled                 each assert inside a ``def test_...():`` that nothing calls
    no_entry:helper          the asserts call a renamed copy of the reference of the tests' own
    no_entry:shadow          the tests start with a copy of the reference named as the entry point
                             (run in the candidate's namespace, it replaces the candidate), then the
                             correct suite
    syntax_error             the correct suite with a bracket missing: it does not parse
    too_few                  one assert (not for HumanEval-style ``check`` suites)

Every flawed suite but ``shape_only``, ``tautology``, ``uncalled`` and the ``no_entry`` ones fails
on the reference or does not run; those four pass whatever the candidate does.
"""

from __future__ import annotations

import ast
import builtins
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal, TypeGuard, TypeVar

from codestill.pysrc import parse_quietly
from codestill.sim._strong import _source

KINDS = ("wrong_values", "tautology", "shape_only", "uncalled", "no_entry", "syntax_error", "too_few")
_BUILTINS = frozenset(dir(builtins))
_WRAPPERS = frozenset({"set", "frozenset", "sorted", "list", "tuple"})  # f(x) returning v passes wrapper(f(x)) == v
_CONSTRUCTORS = {"set": set, "frozenset": frozenset, "tuple": tuple, "list": list, "sorted": sorted, "dict": dict}


@dataclass(frozen=True)
class Case:
    """One assert of a suite that calls the entry point (sources, with the entry point's own name)."""

    test: str  # the assert's test expression
    side: str  # eq / close: the side with the call; truth: what is tested; other: the call
    expected: str | None  # eq / close: the other side
    mode: Literal["eq", "close", "truth", "other"]
    negated: bool  # truth: ``assert not ...``
    args: tuple[str, ...] | None  # the call's positional arguments (None: a starred one, **kwargs)
    kwargs: tuple[tuple[str, str], ...]
    returns: str | None  # what the call must return for the assert to pass, where that is plain


@dataclass(frozen=True)
class Suite:
    setup: tuple[str, ...]  # the import statements
    cases: tuple[Case, ...]
    check: bool  # HumanEval-style: a ``def check(candidate)``


_Tree = TypeVar("_Tree", bound=ast.AST)


def rename(tree: _Tree, old: str, new: str) -> _Tree:
    """``tree`` with every name ``old`` (a function's, a call's, a variable's) called ``new``, in place."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id == old:
            node.id = new
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == old:
            node.name = new
    return tree


def _calls(node: ast.AST, name: str) -> list[ast.Call]:
    return [n for n in ast.walk(node) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == name]


def _names(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def _is_isclose(node: ast.AST) -> TypeGuard[ast.Call]:
    f = node.func if isinstance(node, ast.Call) else None
    return (isinstance(f, ast.Attribute) and f.attr == "isclose") or (isinstance(f, ast.Name) and f.id == "isclose")


def _case(test: ast.expr, entry: str, allowed: frozenset[str]) -> Case | None:
    calls = _calls(test, entry)
    if not calls or not _names(test) <= allowed:
        return None
    call = calls[0]
    mode, side, expected, negated = "other", call, None, False
    if isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.Eq):
        left, right = test.left, test.comparators[0]
        if bool(_calls(left, entry)) != bool(_calls(right, entry)):
            side, expected = (left, right) if _calls(left, entry) else (right, left)
            mode = "eq"
    elif _is_isclose(test) and len(test.args) >= 2 and bool(_calls(test.args[0], entry)) != bool(
            _calls(test.args[1], entry)):
        side, expected = (test.args[0], test.args[1]) if _calls(test.args[0], entry) else (test.args[1], test.args[0])
        mode = "close"
    elif isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        mode, side, negated = "truth", test.operand, True
    elif not isinstance(test, ast.Compare | ast.BoolOp):
        mode, side = "truth", test
    direct = side is call or (isinstance(side, ast.Call) and isinstance(side.func, ast.Name)
                              and side.func.id in _WRAPPERS and len(side.args) == 1 and side.args[0] is call)
    returns = None
    if direct and mode in ("eq", "close") and expected is not None and _names(expected) <= _BUILTINS:
        returns = ast.unparse(expected)
    elif mode == "truth" and side is call:
        returns = "False" if negated else "True"
    plain = not any(isinstance(a, ast.Starred) for a in call.args) and all(k.arg for k in call.keywords)
    return Case(test=ast.unparse(test), side=ast.unparse(side),
                expected=ast.unparse(expected) if expected is not None else None, mode=mode, negated=negated,
                args=tuple(ast.unparse(a) for a in call.args) if plain else None,
                kwargs=tuple((k.arg, ast.unparse(k.value)) for k in call.keywords if k.arg) if plain else (),
                returns=returns)


@lru_cache(maxsize=2048)
def read_suite(code: str, entry: str) -> Suite:
    """The suite's imports and the cases of its asserts that call ``entry`` (empty if it does not parse)."""
    try:
        tree = parse_quietly(code)
    except (SyntaxError, ValueError):
        return Suite((), (), False)
    setup: list[str] = []
    asserts: list[ast.Assert] = []
    check = False
    for stmt in tree.body:
        if isinstance(stmt, ast.Import | ast.ImportFrom):
            setup.append(ast.unparse(stmt))
        elif isinstance(stmt, ast.Assert):
            asserts.append(stmt)
        elif isinstance(stmt, ast.FunctionDef) and stmt.name == "check" and stmt.args.args:
            check = True
            body = rename(ast.parse(ast.unparse(stmt)), stmt.args.args[0].arg, entry).body[0]
            for inner in body.body:  # type: ignore[attr-defined]
                if isinstance(inner, ast.Import | ast.ImportFrom):
                    setup.append(ast.unparse(inner))
                elif isinstance(inner, ast.Assert):
                    asserts.append(inner)
    bound = {(a.asname or a.name).split(".")[0] for s in setup for a in ast.parse(s).body[0].names}  # type: ignore[attr-defined]
    allowed = _BUILTINS | bound | {entry}
    cases = tuple(c for a in asserts if (c := _case(a.test, entry, frozenset(allowed))) is not None)
    return Suite(tuple(dict.fromkeys(setup)), cases, check)


# ---------------------------------------------------------------- the flaws


def _value(source: str) -> tuple[bool, Any]:
    """(True, value) for a literal or a builtin constructor of one (``set((4, 5))``), else (False, None)."""
    try:
        return True, ast.literal_eval(source)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        pass
    try:
        node = ast.parse(source, mode="eval").body
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _CONSTRUCTORS \
                and len(node.args) <= 1 and not node.keywords:
            args = [ast.literal_eval(a) for a in node.args]
            return True, _CONSTRUCTORS[node.func.id](*args)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        pass
    return False, None


def _perturbed(value: Any) -> tuple[bool, Any]:
    t = type(value)
    if t is bool:
        return True, not value
    if t is int:
        return True, value + 1
    if t is float:
        return True, value + 1.0 if value == value and abs(value) != float("inf") else 0.0
    if t is str:
        return True, value[:-1] if value else "a"
    if t in (list, tuple):
        return True, value[:-1] if value else t([0])
    if t is dict:
        return True, dict(list(value.items())[:-1]) if value else {0: 0}
    if t in (set, frozenset):
        return True, t(sorted(value, key=_source)[:-1]) if value else t({0})
    if value is None:
        return True, 0
    return False, None


def _differ(a: str, b: str) -> bool:
    try:
        return ast.literal_eval(a) != ast.literal_eval(b)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False


def _text(setup: tuple[str, ...], lines: list[str]) -> str:
    return "\n".join([*setup, *([""] if setup else []), *lines]) + "\n"


def _rotated(items: tuple, u: float) -> list:
    k = int(u * len(items)) if items else 0
    return [*items[k:], *items[:k]]


def _wrong_values(suite: Suite, probed: dict[str, str], u: float) -> tuple[str, str] | None:
    cases = suite.cases
    if not any(c.mode in ("eq", "truth") for c in cases):
        return None
    lines = [f"assert {c.test}" for c in cases]
    changed = False
    for i, c in enumerate(cases):
        got, want = probed.get(c.side), probed.get(c.expected or "")
        if c.mode == "eq" and got is not None and want is not None and _differ(got, want):
            lines[i], changed = f"assert {c.side} == {got}", True
    if changed:
        return _text(suite.setup, lines), "wrong_values:mutant"
    order = _rotated(tuple(range(len(cases))), u)
    for i in order:
        c = cases[i]
        if c.mode == "eq":
            ok, value = _value(c.expected or "")
            if not ok and c.expected in probed:
                ok, value = True, ast.literal_eval(probed[c.expected])
            ok, new = _perturbed(value) if ok else (False, None)
            if ok:
                lines[i] = f"assert {c.side} == {_source(new)}"
                return _text(suite.setup, lines), "wrong_values:perturbed"
        elif c.mode == "truth":
            lines[i] = f"assert {c.side}" if c.negated else f"assert not {c.side}"
            return _text(suite.setup, lines), "wrong_values:perturbed"
    i = next(i for i in order if cases[i].mode == "eq")
    lines[i] = f"assert {cases[i].side} != {cases[i].expected}"
    return _text(suite.setup, lines), "wrong_values:perturbed"


def _shape_only(suite: Suite) -> str | None:
    lines = []
    for c in suite.cases:
        ok, value = _value(c.expected or "") if c.mode == "eq" else (False, None)
        if not ok or value is None:
            continue
        if type(value) in (bool, int, float):
            lines.append(f"assert isinstance({c.side}, (int, float))")
        elif type(value) in (str, list, tuple, dict, set, frozenset):
            lines.append(f"assert len({c.side}) == {len(value)}" if len(lines) % 2 else
                         f"assert isinstance({c.side}, {type(value).__name__})")
    return _text(suite.setup, lines) if lines else None


def _helper(suite: Suite, reference: str, entry: str) -> str | None:
    try:
        tree = parse_quietly(reference)
    except (SyntaxError, ValueError):
        return None
    if not suite.cases or not any(isinstance(s, ast.FunctionDef) and s.name == entry for s in tree.body):
        return None
    helper = f"expected_{entry}"
    lines = [f"assert {ast.unparse(rename(ast.parse(c.test, mode='eval'), entry, helper))}" for c in suite.cases]
    return ast.unparse(rename(tree, entry, helper)) + "\n\n\n" + _text(suite.setup, lines)


def _syntax_error(code: str) -> str | None:
    """``code`` with the closing bracket of one assert's call left out (or, failing that, a stray colon)."""
    lines = code.splitlines()
    for i, line in enumerate(lines):
        if not line.lstrip().startswith("assert ") or ")" not in line:
            continue
        cut = line.rfind(")") if line.rstrip()[-1:] == ")" else line.find(")")
        for attempt in ([*lines[:i], line[:cut] + line[cut + 1:], *lines[i + 1:]],
                        [*lines[:i], line.rstrip() + ":", *lines[i + 1:]]):
            try:
                ast.parse("\n".join(attempt))
            except SyntaxError:
                return "\n".join(attempt) + "\n"
    return None


def flawed(kind: str, suite: Suite, code: str, reference: str, entry: str, u: float,
           probed: dict[str, str]) -> tuple[str, str] | None:
    """(flawed tests, label) of ``kind`` made from the correct suite (``code``, read as ``suite``), or
    None where the kind does not apply to it; ``u`` in [0, 1) picks among its variants."""
    cases = suite.cases
    if kind == "wrong_values":
        return _wrong_values(suite, probed, u)
    if kind == "tautology" and cases:
        return _text(suite.setup, [f"assert {c.side} == {c.side}" for c in cases]), kind
    if kind == "shape_only":
        text = _shape_only(suite)
        return (text, kind) if text else None
    if kind == "uncalled" and cases:
        return _text(suite.setup, [f"def test_{entry}_{i}():\n    assert {c.test}\n" for i, c in enumerate(cases)]), kind
    if kind == "no_entry":
        helper = _helper(suite, reference, entry) if u < 0.5 else None
        if helper is not None:
            return helper, "no_entry:helper"
        return reference.strip("\n") + "\n\n\n" + code.strip("\n") + "\n", "no_entry:shadow"
    if kind == "syntax_error":
        text = _syntax_error(code)
        return (text, kind) if text else None
    if kind == "too_few" and cases and not suite.check:
        return _text(suite.setup, [f"assert {_rotated(cases, u)[0].test}"]), kind
    return None
