"""Turning assert-style test code into the units the harness runs, on the trusted host side.

Each top-level statement is a unit: ``assert`` statements and bare expressions (``check(f)``)
are tests, reported one by one; everything else (imports, defs, assignments) is setup, run in
order. The host, not the sandbox, decides how many tests there are, so a report that stops
early can never pass. Comparisons inside ``assert`` statements go through ``_cs_cmp``, which
refuses to let the program's own ``__eq__`` vouch for it (see ``_runner._make_comparator``).
"""

from __future__ import annotations

import ast
import base64
import builtins
import re
import secrets
import sys
from dataclasses import dataclass
from typing import Any

from codestill.pysrc import parse_quietly
from codestill.schemas import Limits, TestSuite

_OPS = {ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=",
        ast.In: "in", ast.NotIn: "not in"}


_LINE_BREAK = re.compile(r"\r\n|\r|\n")  # the line breaks the parser knows (not str.splitlines's)
_WORD = re.compile(r"[A-Za-z_]\w*")
_TOP_LEVEL_DEF = re.compile(rb"^(?:async[ \t]+)?(?:def|class)[ \t]+([A-Za-z_]\w*)", re.MULTILINE)
_BUILTIN_NAMES = frozenset(n for n in dir(builtins) if not n.startswith("__"))


class InvalidTests(ValueError):
    """The test code itself does not parse."""


@dataclass(frozen=True)
class Unit:
    name: str
    code: str
    is_test: bool


def prepare(program: str | bytes, tests: TestSuite | str, limits: Limits) -> tuple[dict[str, Any], list[Unit]]:
    """The runner's request, and the units the verdict is judged against (every backend sends the same
    request: the Docker pool over a container's channel, ``LocalSandbox`` over a local process's)."""
    suite = TestSuite(code=tests) if isinstance(tests, str) else tests
    source = program.encode() if isinstance(program, str) else program
    req: dict[str, Any] = {
        "op": "run", "program": base64.b64encode(source).decode(), "mode": suite.kind,
        "nonce": secrets.token_hex(16),
        "limits": {**limits.model_dump(exclude={"wall_s"}), "wall_s": limits.wall_limit_s,
                   "report_bytes": 8 << 20},
    }
    if suite.kind == "io":
        units = [Unit(name=f"case {i}: stdin {c.input[:40]!r}", code="", is_test=True)
                 for i, c in enumerate(suite.cases)]
        req["cases"] = [c.model_dump() for c in suite.cases]
    else:
        units = split_asserts(suite.code, suite.entry_point)
        req["units"] = [{"code": u.code} for u in units]
        words = suite_words(suite.code)
        req["pinned"] = pinned_names(source, words, suite.entry_point)
        req["bound"] = bound_names(source, words, suite.entry_point)
        req["modules"] = named_modules(words)
    return req, units


class _HardenComparisons(ast.NodeTransformer):
    def __init__(self) -> None:
        self.in_assert = 0

    def visit_Assert(self, node: ast.Assert) -> ast.AST:
        self.in_assert += 1
        node.test = self.visit(node.test)
        self.in_assert -= 1
        return node

    def visit_Compare(self, node: ast.Compare) -> ast.AST:
        self.generic_visit(node)
        if not self.in_assert or not all(type(op) in _OPS for op in node.ops):
            return node
        ops = ast.Tuple([ast.Constant(_OPS[type(op)]) for op in node.ops], ast.Load())
        # A chain (a < b < c) evaluates every operand once, eagerly (no short-circuit).
        return ast.Call(ast.Name("_cs_cmp", ast.Load()), [ops, node.left, *node.comparators], [])


def split_asserts(code: str, entry_point: str | None = None) -> list[Unit]:
    try:
        tree = parse_quietly(code)
    except SyntaxError as e:
        raise InvalidTests(f"the tests do not parse: SyntaxError: {e.msg} (line {e.lineno})") from None
    units: list[Unit] = []
    defines_check = False
    # Split once: ast.get_source_segment splits the whole source again on every call, which made
    # a suite of a thousand asserts (EvalPlus's) quadratic.
    lines = _LINE_BREAK.split(code)
    for stmt in tree.body:
        defines_check |= isinstance(stmt, ast.FunctionDef) and stmt.name == "check"
        name = (_first_line(lines, stmt) or ast.unparse(stmt).splitlines()[0])[:160]
        hardened = ast.fix_missing_locations(_HardenComparisons().visit(stmt))
        is_test = isinstance(stmt, ast.Assert | ast.Expr) and not _is_docstring(stmt)
        units.append(Unit(name=name, code=ast.unparse(hardened), is_test=is_test))
    if entry_point and defines_check:  # HumanEval: check(candidate) is the test
        units.append(Unit(name=f"check({entry_point})", code=f"check({entry_point})", is_test=True))
    if not any(u.is_test for u in units):
        raise InvalidTests("the tests contain no assert statement or check call")
    return units


def suite_words(tests: str) -> frozenset[str]:
    """Every identifier-like word in the test code, read once for ``pinned_names`` and
    ``named_modules`` (a superset of the names the tests use: strings and attributes count too)."""
    return frozenset(_WORD.findall(tests))


def pinned_names(program: bytes, words: frozenset[str], entry_point: str | None) -> list[str]:
    """The builtin names in the tests (``words``) that must mean the builtin, whatever the program binds.

    A program's module-level ``len = lambda x: 3`` would otherwise answer for the tests' ``len``.
    The entry point is the exception: MBPP 126's is ``sum``. Without a declared one, the
    program's top-level functions and classes that the tests name are taken as entry points,
    those named like a builtin only when the tests name no other. A superset is harmless: a
    pinned name the tests never look up changes nothing.
    """
    builtin_used = words & _BUILTIN_NAMES
    if not builtin_used:
        return []
    if entry_point:
        entries = {entry_point}
    else:
        entries = {m.decode() for m in _TOP_LEVEL_DEF.findall(program)} & words
        entries = (entries - _BUILTIN_NAMES) or entries
    return sorted(builtin_used - entries)


def bound_names(program: bytes, words: frozenset[str], entry_point: str | None) -> list[str]:
    """The program's top-level functions and classes that the tests name, and the entry point: the
    harness binds them to the program's own objects before every test unit, so test code that
    defines or assigns one (a tester's own ``def f``) cannot replace the code under test."""
    names = {m.decode() for m in _TOP_LEVEL_DEF.findall(program)} & words
    if entry_point:
        names.add(entry_point)
    return sorted(names)


def named_modules(words: frozenset[str]) -> list[str]:
    """The standard library's top-level modules named in the tests (``words``): the harness puts
    back what the program rebinds in those (a superset again: a word that names no module used
    costs a dictionary look-up)."""
    return sorted(words & sys.stdlib_module_names)


def _first_line(lines: list[str], stmt: ast.stmt) -> str:
    """The first line of ``stmt``'s source, as ``ast.get_source_segment`` would give it (its offsets
    count UTF-8 bytes)."""
    if stmt.lineno > len(lines):
        return ""
    raw = lines[stmt.lineno - 1].encode()
    end = stmt.end_col_offset if stmt.end_lineno == stmt.lineno else None
    return raw[stmt.col_offset:end].decode(errors="replace").splitlines()[0] if raw[stmt.col_offset:end] else ""


def _is_docstring(stmt: ast.stmt) -> bool:
    return isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant)
