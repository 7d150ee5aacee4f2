"""The AST checks behind seed mining's filters: does a function take arguments, return a value, import
a banned module, and which names does it need from its module (``tools.seeds`` applies them)."""

from __future__ import annotations

import ast
import builtins
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

_Def = ast.FunctionDef | ast.AsyncFunctionDef
_Scope = ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda | ast.ClassDef
_BUILTINS = frozenset(dir(builtins))

# Case-sensitive whole words, in code, comments or docstrings: the marks of unfinished or known-wrong
# code. SelfCodeAlign drops seeds containing them (it matches "todo", "fixme", "bug" in lower case,
# which also removes every function that mentions a "debugger"; whole upper-case words do not).
MARKERS = re.compile(r"\b(?:TODO|FIXME|BUG)\b")


def takes_arguments(fn: _Def) -> bool:
    """At least one parameter of any kind, not counting a leading ``self``/``cls``."""
    a = fn.args
    positional = [*a.posonlyargs, *a.args]
    if positional and positional[0].arg in ("self", "cls"):
        positional = positional[1:]
    return bool(positional or a.kwonlyargs or a.vararg or a.kwarg)


def returns_value(fn: _Def) -> bool:
    """A ``return <expr>`` in the function's own body (nested functions, lambdas and classes do not
    count); ``return`` and ``return None`` are not a value."""
    stack: list[ast.AST] = list(fn.body)
    while stack:
        node = stack.pop()
        if isinstance(node, _Scope):
            continue
        if isinstance(node, ast.Return) and node.value is not None \
                and not (isinstance(node.value, ast.Constant) and node.value.value is None):
            return True
        stack.extend(ast.iter_child_nodes(node))
    return False


@dataclass(frozen=True)
class ImportBinding:
    """A name module-level imports bind: the modules it comes from and the statements that bind it
    (``import email.utils`` and ``import email.message`` both bind ``email``; a function reading
    ``email.utils`` needs them all, as the module had them)."""

    name: str
    modules: tuple[str, ...]
    statements: tuple[str, ...]


@dataclass
class ModuleScope:
    """What a module's top-level statements provide to its functions."""

    imports: dict[str, ImportBinding] = field(default_factory=dict)
    defined: set[str] = field(default_factory=set)  # every other name bound at module level
    future: list[str] = field(default_factory=list)  # ``from __future__ import ...`` statements
    star: bool = False  # a ``from m import *``: names that cannot be known from the source

    def provides(self, name: str) -> bool:
        """Whether ``name`` is one of the module's own (a module-level name shadows a builtin)."""
        return name in self.imports or name in self.defined


def _statement(node: ast.Import | ast.ImportFrom, alias: ast.alias) -> str:
    one = ast.alias(name=alias.name, asname=alias.asname)
    if isinstance(node, ast.Import):
        return ast.unparse(ast.Import(names=[one]))
    return ast.unparse(ast.ImportFrom(module=node.module, names=[one], level=node.level))


def imported_modules(node: ast.Import | ast.ImportFrom, alias: ast.alias) -> tuple[str, ...]:
    """The dotted modules an import alias reads: ``from urllib import request`` may be the module
    ``urllib.request``, so both ``urllib`` and ``urllib.request`` are named. Relative imports are
    named with their leading dots."""
    if isinstance(node, ast.Import):
        return (alias.name,)
    base = "." * node.level + (node.module or "")
    if not node.module:
        return (base + alias.name,)
    return (base, f"{base}.{alias.name}")


def _bound_at_module_level(statements: list[ast.stmt], out: set[str]) -> None:
    # Through compound statements (if/try/with/for/while/match), not into function or class bodies,
    # lambdas or comprehensions, whose names are their own.
    for stmt in statements:
        if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            out.add(stmt.name)
            continue
        if isinstance(stmt, ast.Import | ast.ImportFrom):
            out.update(a.asname or a.name.split(".")[0] for a in stmt.names if a.name != "*")
            continue
        stack: list[ast.AST] = [stmt]
        while stack:
            node = stack.pop()
            if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
                out.add(node.id)
            elif isinstance(node, ast.ExceptHandler) and node.name:
                out.add(node.name)
            if isinstance(node, ast.Lambda | ast.ListComp | ast.SetComp | ast.DictComp | ast.GeneratorExp):
                continue
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.stmt):
                    _bound_at_module_level([child], out)
                else:
                    stack.append(child)


def module_scope(tree: ast.Module) -> ModuleScope:
    """What a module binds at its top level. Only plain top-level imports count as imports: those
    inside ``try``/``if`` blocks are conditional, so a function depending on them is not counted as
    self-contained (their names are in ``defined``)."""
    scope = ModuleScope()
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module == "__future__" and not node.level:
            scope.future.append(ast.unparse(node))
            continue
        if not isinstance(node, ast.Import | ast.ImportFrom):
            continue
        for alias in node.names:
            if alias.name == "*":
                scope.star = True
                continue
            name = alias.asname or alias.name.split(".")[0]
            before = scope.imports.get(name)
            modules, statements = imported_modules(node, alias), (_statement(node, alias),)
            if before is not None:
                modules = tuple(dict.fromkeys(before.modules + modules))
                statements = tuple(dict.fromkeys(before.statements + statements))
            scope.imports[name] = ImportBinding(name=name, modules=modules, statements=statements)
    bound: set[str] = set()
    _bound_at_module_level(tree.body, bound)
    scope.defined = bound - scope.imports.keys()
    return scope


def free_names(fn: _Def) -> set[str]:
    """Names the function (decorators, defaults and annotations included) reads without binding
    them itself: builtins, module-level names and anything else it expects from outside. An
    over-approximation of Python's scoping (a name bound in any nested scope counts as bound), which
    the type check, where it runs, tightens."""
    bound: set[str] = set()
    loaded: set[str] = set()
    declared_global: set[str] = set()
    for node in ast.walk(fn):
        if isinstance(node, ast.Name):
            (loaded if isinstance(node.ctx, ast.Load) else bound).add(node.id)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) and node is not fn:
            bound.add(node.name)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            bound.update(a.asname or a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ExceptHandler | ast.MatchAs | ast.MatchStar) and node.name:
            bound.add(node.name)
        elif isinstance(node, ast.MatchMapping) and node.rest:
            bound.add(node.rest)
        elif isinstance(node, ast.Global):
            declared_global.update(node.names)
    # A function may call itself: its own name is defined by the seed.
    return loaded - (bound - declared_global) - {fn.name}


def own_imports(fn: _Def) -> list[str]:
    """The modules imported inside the function (relative ones with their leading dots)."""
    out: list[str] = []
    for node in ast.walk(fn):
        if isinstance(node, ast.Import | ast.ImportFrom):
            for alias in node.names:
                out.extend(imported_modules(node, alias))
    return out


def banned_module(modules: Iterable[str], banned: Iterable[str]) -> str | None:
    """The first module that is, or is inside, a banned one (``os.path`` is inside ``os``)."""
    banned = tuple(banned)
    for module in modules:
        for b in banned:
            if module == b or module.startswith(b + "."):
                return module
    return None


def is_builtin(name: str) -> bool:
    return name in _BUILTINS
