"""What the realistic coder reads out of a prompt, and how it special-cases code (``_teacher``).

    given_tests(text)         the tests after "The solution must pass these given tests:" (the agents
                              put them in an untagged fence, ``agents._common.task_section``)
    fenced_after(text, head)  the first fenced block after the last line ``head`` ("## Your previous
                              solution", ``PREVIOUS_TESTS``), whatever its language tag
    failing_asserts(text)     the failing asserts ``ExecResult.feedback()`` lists after the last failing
                              ``status:`` line: ``- <assert's first line>: failed: <message>``
    special_cased(code, ...)  ``code`` with ``if (params) == (args): return <expected>`` for each
                              assert at the top of the entry function: it passes them, and nothing more
    renamed(code, old, new)   the entry point (and its recursive calls) renamed
"""

from __future__ import annotations

import ast
import re

from codestill.pysrc import parse_quietly
from codestill.sim._roles import _FAILING, _STATUS
from codestill.sim._suites import read_suite, rename

GIVEN = "The solution must pass these given tests:"
PREVIOUS_SOLUTION = "## Your previous solution"
_ITEM = re.compile(r"^- (assert\b.*)$", re.M)
_OUTCOME = re.compile(r": (?:failed|error|not_run)(?=: |$)")


def _fence_at(text: str, start: int) -> str | None:
    """The body of the first fenced block (``` or more, any tag) at or after ``start``."""
    m = re.compile(r"^[ \t]*(`{3,})[^\n`]*\n", re.M).search(text, start)
    if m is None:
        return None
    end = re.compile(r"^[ \t]*" + m.group(1) + r"[ \t]*$", re.M).search(text, m.end())
    return text[m.end(): end.start() if end else len(text)].rstrip("\n")


def fenced_after(text: str, heading: str) -> str | None:
    at = text.rfind(heading)
    return _fence_at(text, at + len(heading)) if at >= 0 else None


def given_tests(text: str) -> str | None:
    return fenced_after(text, GIVEN)


def failing_asserts(text: str) -> list[str]:
    """The failing asserts of the last failing run shown (each one line: the test's name)."""
    found = [m for m in _STATUS.finditer(text) if m.group(1) in _FAILING]
    if not found:
        return []
    out = []
    for item in _ITEM.finditer(text, found[-1].end()):
        line = item.group(1)
        for cut in _OUTCOME.finditer(line):  # the name may hold ": failed" itself: the first cut that parses
            try:
                stmt = ast.parse(line[: cut.start()]).body
            except SyntaxError:
                continue
            if len(stmt) == 1 and isinstance(stmt[0], ast.Assert):
                out.append(line[: cut.start()])
                break
    return out


def _entry(tree: ast.Module, entry: str) -> ast.FunctionDef | None:
    return next((s for s in tree.body if isinstance(s, ast.FunctionDef) and s.name == entry), None)


def special_cased(code: str, entry: str, tests: str) -> tuple[str, int] | None:
    """(``code`` answering each assert of ``tests`` it can read with the value the assert wants, how
    many), or None when it has no ``entry`` function or no assert could be special-cased."""
    try:
        tree = parse_quietly(code)
    except (SyntaxError, ValueError):
        return None
    fn = _entry(tree, entry)
    if fn is None:
        return None
    positional = [a.arg for a in [*fn.args.posonlyargs, *fn.args.args]]
    named = set(positional) | {a.arg for a in fn.args.kwonlyargs}
    ifs: list[ast.stmt] = []
    seen: set[str] = set()
    for case in read_suite(tests, entry).cases:
        if case.returns is None or case.args is None or len(case.args) > len(positional):
            continue
        bound = list(zip(positional, case.args, strict=False)) + [(k, v) for k, v in case.kwargs if k in named]
        if not bound or len(bound) != len(case.args) + len(case.kwargs):
            continue
        params = ", ".join(p for p, _ in bound) + ("," if len(bound) == 1 else "")
        values = ", ".join(v for _, v in bound) + ("," if len(bound) == 1 else "")
        source = f"if ({params}) == ({values}):\n    return {case.returns}"
        if source in seen:
            continue
        seen.add(source)
        try:
            ifs.append(ast.parse(source).body[0])
        except SyntaxError:
            continue
    if not ifs:
        return None
    _at_top(fn, ifs)
    return ast.unparse(ast.fix_missing_locations(tree)), len(ifs)


def _at_top(fn: ast.FunctionDef, stmts: list[ast.stmt]) -> None:
    """Put ``stmts`` first in ``fn``'s body, after its docstring."""
    first = fn.body[0] if fn.body else None
    doc = isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str)
    fn.body[int(doc):int(doc)] = stmts


def renamed(code: str, old: str, new: str) -> str:
    return ast.unparse(rename(parse_quietly(code), old, new))


def returning_constant(code: str, entry: str, value: str = "None") -> str | None:
    """``code`` whose entry function returns ``value`` right away (a wrong constant)."""
    tree = parse_quietly(code)
    fn = _entry(tree, entry)
    if fn is None:
        return None
    _at_top(fn, [ast.parse(f"return {value}").body[0]])
    return ast.unparse(ast.fix_missing_locations(tree))
