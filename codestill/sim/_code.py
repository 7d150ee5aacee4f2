"""What the simulator reads out of a solution's source: its modules, one module alone, fenced code.

Every function here is pure and cached on its (immutable) string arguments, so the AST work for a
problem is done once per server, however many requests ask about it.
"""

from __future__ import annotations

import ast
import re
from functools import lru_cache

from codestill.pysrc import def_line, parse_quietly

_FENCE = re.compile(r"```(?:python|py|python3)[ \t]*\n(.*?)(?:```|\Z)", re.S | re.I)


def last_python_block(text: str) -> str | None:
    """The last ```python fenced block in ``text`` that is a solution: it parses and is not a stub.

    A HumanEval task is itself a parseable ``def`` with only a docstring; quoting the task in a
    fence must not read as "here is a solution".
    """
    for block in reversed(_FENCE.findall(text)):
        if is_solution(block):
            return block
    return None


@lru_cache(maxsize=4096)
def is_solution(code: str) -> bool:
    try:
        tree = parse_quietly(code)
    except (SyntaxError, ValueError):
        return False
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            if any(not _is_placeholder(s) for s in node.body):
                return True
        elif not isinstance(node, ast.Import | ast.ImportFrom) and not _is_placeholder(node):
            return True
    return False


def _is_placeholder(stmt: ast.stmt) -> bool:
    """A docstring, ``pass``, ``...`` or ``raise NotImplementedError``: no implementation."""
    if isinstance(stmt, ast.Pass):
        return True
    if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant):
        return isinstance(stmt.value.value, str) or stmt.value.value is Ellipsis
    if isinstance(stmt, ast.Raise) and stmt.exc is not None:
        exc = stmt.exc.func if isinstance(stmt.exc, ast.Call) else stmt.exc
        return isinstance(exc, ast.Name) and exc.id == "NotImplementedError"
    return False


def _functions(tree: ast.Module) -> list[ast.FunctionDef | ast.AsyncFunctionDef]:
    return [n for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]


def _description(fn: ast.FunctionDef | ast.AsyncFunctionDef, callers: list[str]) -> str:
    doc = ast.get_docstring(fn)
    if doc and doc.strip():
        # The docstring's first sentence (its first paragraph may wrap over lines).
        para = " ".join(doc.strip().split("\n\n")[0].split())
        sentence = para.split(". ")[0].split(">>>")[0].strip()
        return sentence if len(sentence) <= 200 else sentence[:197].rstrip() + "..."
    args = [a.arg for a in fn.args.args]
    takes = f"Takes {', '.join(args)}" if args else "Takes no arguments"
    returns = next((n for n in ast.walk(fn) if isinstance(n, ast.Return) and n.value is not None), None)
    gives = f" and returns {_short(returns.value, 60)}" if returns is not None and returns.value is not None else ""
    used = f"; used by {', '.join(callers)}" if callers else ""
    return f"{takes}{gives}{used}."


def _short(node: ast.AST, limit: int) -> str:
    text = " ".join(ast.unparse(node).split())
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."


@lru_cache(maxsize=2048)
def modules_of(code: str) -> tuple[tuple[str, str, str], ...]:
    """(name, signature, description) of each top-level function, in source order."""
    tree = parse_quietly(code)
    functions = _functions(tree)
    names = {f.name for f in functions}
    callers: dict[str, list[str]] = {name: [] for name in names}
    for f in functions:
        for node in ast.walk(f):
            if isinstance(node, ast.Name) and node.id in names and node.id != f.name and f.name not in callers[node.id]:
                callers[node.id].append(f.name)
    return tuple((f.name, def_line(f), _description(f, callers[f.name])) for f in functions)


@lru_cache(maxsize=2048)
def module_source(code: str, name: str) -> str | None:
    """Function ``name`` of ``code`` alone, preceded by the imports it uses; None if there is none."""
    tree = parse_quietly(code)
    fn = next((f for f in _functions(tree) if f.name == name), None)
    if fn is None:
        return None
    used = {n.id for n in ast.walk(fn) if isinstance(n, ast.Name)}
    used |= {n.value.id for n in ast.walk(fn) if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name)}
    parts = []
    for stmt in tree.body:
        if isinstance(stmt, ast.Import | ast.ImportFrom):
            bound = {(a.asname or a.name).split(".")[0] for a in stmt.names}
            if bound & used or any(a.name == "*" for a in stmt.names):
                parts.append(ast.get_source_segment(code, stmt) or ast.unparse(stmt))
    # Decorators belong to the module too; the segment of a FunctionDef starts at ``def``.
    start = min([fn.lineno, *(d.lineno for d in fn.decorator_list)])
    body = "\n".join(code.splitlines()[start - 1: fn.end_lineno])
    return ("\n".join(parts) + "\n\n\n" if parts else "") + body.rstrip() + "\n"


def stub(name: str) -> str:
    """The honest answer of a coder with no reference: a function that says so when called."""
    return (f"def {name}(*args, **kwargs):\n"
            f'    raise NotImplementedError("the simulator has no reference for this task")\n')
