"""Code analysis on the AST: a canonical hash that ignores what does not change behaviour, signature
shapes, and the parts of a function (name, def line, docstring).

``normalized_hash`` is what the module memory's exact-duplicate check rests on: two pieces of code hash
alike when they differ only in formatting, comments, docstrings or the names of local variables.
Parameter and function names are kept (they are the interface); ``signature_shape`` drops them, for
the near-duplicate check.
"""

from __future__ import annotations

import ast
import hashlib
from dataclasses import dataclass

from codestill.pysrc import def_line, parse_quietly

__all__ = ["FunctionInfo", "describe_function", "function_info", "normalized_hash", "normalized_source", "signature_shape",
           "skeleton_hash"]

_Def = ast.FunctionDef | ast.AsyncFunctionDef
_Scope = ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda


@dataclass(frozen=True)
class FunctionInfo:
    name: str
    signature: str  # the def line, without its colon
    docstring: str
    shape: str  # signature_shape()
    lineno: int


def _strip_docstrings(tree: ast.AST) -> None:
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) \
                    and isinstance(first.value.value, str):
                node.body = node.body[1:] or [ast.Pass()]


def _params(args: ast.arguments) -> list[str]:
    every = [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]
    return [a.arg for a in every if a is not None]


class _RenameLocals(ast.NodeTransformer):
    """Renames the names a function binds in its own body (not its parameters, not names declared
    ``global``/``nonlocal``) to ``_v0, _v1, ...`` in order of first appearance."""

    def __init__(self, fn: _Scope, params: bool = False, mapping: dict[str, str] | None = None) -> None:
        keep = set() if params else set(_params(fn.args))
        for node in ast.walk(fn):
            if isinstance(node, ast.Global | ast.Nonlocal):
                keep.update(node.names)
        bound: list[str] = []
        for node in ast.walk(fn):
            names: list[str] = []
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store | ast.Del):
                names = [node.id]
            elif (isinstance(node, ast.ExceptHandler) and node.name) or (isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) and node is not fn):
                names = [node.name] if node.name else []
            elif isinstance(node, ast.Lambda | ast.FunctionDef | ast.AsyncFunctionDef) and node is not fn:
                names = _params(node.args)
            bound += [n for n in names if n not in keep and n not in bound]
        if params:
            bound = [n for n in _params(fn.args) if n not in bound] + bound
        self.mapping = {**(mapping or {}), **{name: f"_v{i}" for i, name in enumerate(bound)}}

    def visit_Name(self, node: ast.Name) -> ast.Name:
        node.id = self.mapping.get(node.id, node.id)
        return node

    def visit_arg(self, node: ast.arg) -> ast.arg:
        node.arg = self.mapping.get(node.arg, node.arg)
        return node

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> ast.ExceptHandler:
        if node.name:
            node.name = self.mapping.get(node.name, node.name)
        self.generic_visit(node)
        return node

    def _rename_def(self, node: _Def | ast.ClassDef) -> ast.AST:
        node.name = self.mapping.get(node.name, node.name)
        self.generic_visit(node)
        return node

    visit_FunctionDef = visit_AsyncFunctionDef = visit_ClassDef = _rename_def


def _canonical(code: str, names: bool) -> str:
    tree = parse_quietly(code)
    _strip_docstrings(tree)
    # With names=True the top-level functions' own names go too (calls between them included).
    top = {n.name: f"_f{i}" for i, n in enumerate(tree.body)
           if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)} if names else {}
    for node in tree.body:
        fns = [node] if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) else \
            [f for f in node.body if isinstance(f, ast.FunctionDef | ast.AsyncFunctionDef)] \
            if isinstance(node, ast.ClassDef) else []
        for fn in fns:
            renamer = _RenameLocals(fn, params=names, mapping=top)
            if names:
                fn.args = renamer.visit(fn.args)
                fn.name = top.get(fn.name, fn.name)
            # Without names=True the function's own name and parameters are its interface: kept.
            fn.body = [renamer.visit(stmt) for stmt in fn.body]
    return ast.unparse(ast.fix_missing_locations(tree))


def normalized_source(code: str) -> str:
    """The canonical form of ``code``: no docstrings, no comments, one formatting, and the local
    variables of every function renamed in order of appearance. Raises SyntaxError."""
    return _canonical(code, names=False)


def normalized_hash(code: str) -> str:
    """SHA-256 (hex) of ``normalized_source(code)``: equal for code that differs only in formatting,
    comments, docstrings and local variable names. Raises SyntaxError on code that does not parse."""
    return hashlib.sha256(normalized_source(code).encode()).hexdigest()


def same_code(a: str, b: str) -> bool:
    """The same program, formatting, comments, docstrings and local names aside (``normalized_hash``);
    False when either does not parse."""
    try:
        return normalized_hash(a) == normalized_hash(b)
    except (SyntaxError, ValueError):
        return False


def skeleton_hash(code: str) -> str:
    """Like ``normalized_hash`` but blind to *every* name the code defines: its functions' names and
    parameters too. Equal skeletons mean the same behaviour under other names."""
    return hashlib.sha256(_canonical(code, names=True).encode()).hexdigest()


def signature_shape(fn: _Def) -> str:
    """The signature with the names taken out: parameter kinds, annotations, which have defaults, and
    the return annotation. ``def add(a: int, b: int) -> int`` and ``def plus(x: int, y: int) -> int``
    have the same shape."""
    a = fn.args
    parts: list[str] = []

    def ann(arg: ast.arg) -> str:
        return ast.unparse(arg.annotation) if arg.annotation is not None else ""

    positional = [*a.posonlyargs, *a.args]
    first_default = len(positional) - len(a.defaults)
    for i, arg in enumerate(positional):
        kind = "po" if i < len(a.posonlyargs) else "p"
        parts.append(f"{kind}:{ann(arg)}{'=' if i >= first_default else ''}")
    if a.vararg:
        parts.append(f"*:{ann(a.vararg)}")
    for arg, default in zip(a.kwonlyargs, a.kw_defaults, strict=True):
        parts.append(f"k:{ann(arg)}{'=' if default is not None else ''}")
    if a.kwarg:
        parts.append(f"**:{ann(a.kwarg)}")
    returns = ast.unparse(fn.returns) if fn.returns is not None else ""
    prefix = "async " if isinstance(fn, ast.AsyncFunctionDef) else ""
    return f"{prefix}({', '.join(parts)}) -> {returns}"


def describe_function(fn: _Def) -> FunctionInfo:
    return FunctionInfo(name=fn.name, signature=def_line(fn), docstring=ast.get_docstring(fn) or "",
                        shape=signature_shape(fn), lineno=fn.lineno)


def function_info(code: str, name: str | None = None) -> FunctionInfo:
    """The top-level function ``name`` of ``code`` (default: the last one, which in a module of helpers
    plus a main function is the main one). Raises SyntaxError, or ValueError if there is none."""
    fns = [n for n in parse_quietly(code).body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
    if name is not None:
        fns = [f for f in fns if f.name == name]
    if not fns:
        raise ValueError(f"no top-level function {name!r} in the code" if name else "no top-level function in the code")
    return describe_function(fns[-1])
