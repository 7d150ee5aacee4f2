"""Python source helpers every floor uses: one canonical def line, a quiet parse.

They sit on the ground floor because the benchmark loaders (``codestill.data``), the code tools and the
agents all read Python; none of them should import another's package for a parse.
"""

from __future__ import annotations

import ast
import sys
import threading
import warnings

__all__ = ["def_line", "parse_quietly", "parses"]


def def_line(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> str:
    """The def line without its colon, on one line, e.g. ``def f(xs: list[int]) -> int``.

    Built from the AST rather than cut from the source so multi-line headers and comments come
    out in one canonical form (the simulator's decomposer writes signatures the same way).
    """
    header = ast.FunctionDef(name=fn.name, args=fn.args, body=[ast.Pass()], decorator_list=[],
                             returns=fn.returns, type_comment=None)
    if sys.version_info >= (3, 12):  # ast.unparse reads type_params from 3.12 on
        header.type_params = []
    text = ast.unparse(ast.fix_missing_locations(header)).splitlines()[0].rstrip(":")
    return f"async {text}" if isinstance(fn, ast.AsyncFunctionDef) else text


# One parse at a time in this process. CPython 3.11 keeps the AST converter's recursion depth per
# interpreter, not per thread, so two threads parsing at once can fail with "SystemError: AST
# constructor recursion depth mismatch" (CPython gh-106905), and catch_warnings swaps process-wide
# filters. The module memory parses on worker threads while the event loop parses test suites.
_PARSING = threading.Lock()


def parse_quietly(code: str) -> ast.Module:
    """``ast.parse`` without the DeprecationWarnings some upstream solutions raise ("invalid escape
    sequence '\\w'" in non-raw regex strings): they are the dataset's, and nothing we can fix. Safe to
    call from several threads (see ``_PARSING``)."""
    with _PARSING, warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", SyntaxWarning)
        return ast.parse(code)


def parses(code: str) -> bool:
    """Whether ``code`` is Python that parses (``parse_quietly``)."""
    try:
        parse_quietly(code)
    except (SyntaxError, ValueError):
        return False
    return True
