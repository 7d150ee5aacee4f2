"""Plans in words, read off a solution's AST: define f(sig); loop over ...; if ...; return ...

``plan_of(code, entry, style)`` gives 2-8 steps and a rationale. The ``style`` (0..STYLES-1)
changes phrasing and grouping, so n > 1 choices, or other seeds, give different but equally
faithful plans. Cached on its immutable arguments: the AST walk happens once per (code, style).
"""

from __future__ import annotations

import ast
from functools import lru_cache

from codestill.pysrc import parse_quietly

MAX_STEPS = 8
_EXPR = 56  # longest expression quoted in a step

# Phrasings per style. Keys: define, helper, import, set, update, loop, while, if, else, return, call.
_PHRASES: tuple[dict[str, str], ...] = (
    {"define": "Define {sig}.", "helper": "Write a helper {sig} that {what}.", "import": "Import {what}.",
     "set": "Set {t} to {e}", "update": "Update {t} with {op}= {e}", "loop": "Loop over {it} with {t}",
     "while": "Repeat while {c}", "if": "If {c}", "else": "otherwise", "return": "Return {e}", "call": "Call {e}"},
    {"define": "Write the function {sig}.", "helper": "First write {sig}, which {what}.",
     "import": "Use {what} from the standard library.", "set": "Compute {t} = {e}", "update": "Grow {t} by {op}= {e}",
     "loop": "For each {t} in {it}", "while": "While {c} holds", "if": "When {c}", "else": "else",
     "return": "Give back {e}", "call": "Run {e}"},
    {"define": "Create a function {sig}.", "helper": "Add a helper function {sig}; it {what}.",
     "import": "Start by importing {what}.", "set": "Let {t} be {e}", "update": "Apply {t} {op}= {e}",
     "loop": "Iterate through {it}, taking {t}", "while": "Keep going as long as {c}", "if": "In case {c}",
     "else": "if not", "return": "Finish by returning {e}", "call": "Evaluate {e}"},
    {"define": "Implement {sig}.", "helper": "Implement the helper {sig}, which {what}.",
     "import": "Bring in {what}.", "set": "Assign {e} to {t}", "update": "Change {t} using {op}= {e}",
     "loop": "Go through {it} one {t} at a time", "while": "Loop while {c}", "if": "Check whether {c}; if so",
     "else": "and if not", "return": "Output {e}", "call": "Invoke {e}"},
)
STYLES = len(_PHRASES)


def _x(node: ast.AST | None, limit: int = _EXPR) -> str:
    if node is None:
        return "None"
    text = " ".join(ast.unparse(node).split())
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."


def _lower(s: str) -> str:
    return s[:1].lower() + s[1:] if s[:1].isupper() and s[1:2].islower() else s


def _end(step: str) -> str:
    """A step without its full stop (an expression cut with "..." keeps its dots)."""
    return step if step.endswith("...") else step.removesuffix(".")


def _full(step: str) -> str:
    return step if step.endswith(".") else step + "."


def _is_doc(stmt: ast.stmt) -> bool:
    return isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant) and isinstance(stmt.value.value, str)


class _Describer:
    def __init__(self, style: int) -> None:
        self.p = _PHRASES[style % STYLES]

    def block(self, stmts: list[ast.stmt], depth: int) -> str:
        """Up to two statements of a nested block, in one clause."""
        parts = [self.stmt(s, depth) for s in stmts if not _is_doc(s)]
        parts = [_lower(_end(p)) for p in parts if p]
        text = "; ".join(parts[:2]) + ("; ..." if len(parts) > 2 else "")
        return text or "do nothing"

    def stmt(self, s: ast.stmt, depth: int = 0) -> str:
        p = self.p
        inner = depth < 2  # nested blocks are summarised two levels deep, to keep a step to one line
        match s:
            case ast.Assign(targets=targets, value=value):
                return p["set"].format(t=", ".join(_x(t, 24) for t in targets), e=_x(value))
            case ast.AnnAssign(target=target, value=value) if value is not None:
                return p["set"].format(t=_x(target, 24), e=_x(value))
            case ast.AugAssign(target=target, op=op, value=value):
                sym = ast.unparse(ast.BinOp(ast.Name("a"), op, ast.Name("b")))[2:-2]
                return p["update"].format(t=_x(target, 24), op=sym, e=_x(value))
            case ast.For(target=target, iter=it, body=body) | ast.AsyncFor(target=target, iter=it, body=body):
                head = p["loop"].format(t=_x(target, 24), it=_x(it))
                return f"{head}: {self.block(body, depth + 1)}" if inner else head
            case ast.While(test=test, body=body):
                head = p["while"].format(c=_x(test))
                return f"{head}: {self.block(body, depth + 1)}" if inner else head
            case ast.If(test=test, body=body, orelse=orelse):
                head = p["if"].format(c=_x(test))
                if not inner:
                    return f"{head}, act on it"
                text = f"{head}, {self.block(body, depth + 1)}"
                return f"{text}; {p['else']}, {self.block(orelse, depth + 1)}" if orelse else text
            case ast.Return(value=value):
                return p["return"].format(e=_x(value))
            case ast.Expr(value=value):
                return p["call"].format(e=_x(value))
            case ast.Try(body=body, handlers=handlers):
                caught = ", ".join(_x(h.type, 24) for h in handlers if h.type is not None) or "errors"
                return f"Try to {self.block(body, depth + 1)}, handling {caught}"
            case ast.With(items=items, body=body):
                return f"With {', '.join(_x(i.context_expr, 24) for i in items)}: {self.block(body, depth + 1)}"
            case ast.FunctionDef(name=name) | ast.AsyncFunctionDef(name=name):
                return f"Define an inner function {name}"
            case _:
                return _x(s, 72)


def _merge(steps: list[str], limit: int) -> list[str]:
    """Join neighbouring steps (shortest pair first) until at most ``limit`` remain."""
    steps = list(steps)
    while len(steps) > limit:
        k = min(range(len(steps) - 1), key=lambda i: len(steps[i]) + len(steps[i + 1]))
        steps[k: k + 2] = [f"{_end(steps[k])}; then {_lower(steps[k + 1])}"]
    return steps


@lru_cache(maxsize=8192)
def plan_of(code: str, entry: str | None, style: int, backward: bool = False) -> tuple[tuple[str, ...], str]:
    """(steps, rationale) for ``code``; ``entry`` names the main function (default: the last one)."""
    tree = parse_quietly(code)
    d = _Describer(style)
    fns = [n for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
    main = next((f for f in fns if f.name == entry), fns[-1] if fns else None)
    imports = [", ".join(a.name for a in s.names) + (f" from {s.module}" if isinstance(s, ast.ImportFrom) else "")
               for s in tree.body if isinstance(s, ast.Import | ast.ImportFrom)]
    steps: list[str] = []
    if imports and style % 2 == 0:  # half the styles leave imports implicit, as people often do
        steps.append(d.p["import"].format(what="; ".join(imports[:3])))
    for f in fns:
        if f is not main:
            what = _lower(d.block(f.body, 1))
            steps.append(d.p["helper"].format(sig=_sig(f), what=what))
    body: list[ast.stmt] = main.body if main is not None else [s for s in tree.body if not isinstance(
        s, ast.Import | ast.ImportFrom | ast.FunctionDef | ast.AsyncFunctionDef)]
    if main is not None:
        steps.append(d.p["define"].format(sig=_sig(main)))
    steps += [_full(d.stmt(s)) for s in body if not _is_doc(s)]
    if style % STYLES == 3 and len(steps) > 2:  # one style groups the definition with its first step
        steps[:2] = [f"{_end(steps[0])}, and {_lower(steps[1])}"]
    steps = _merge(steps, MAX_STEPS)
    if len(steps) < 2:
        steps.append("Return the result.")
    return tuple(steps), _rationale(tree, main, backward)


def _sig(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> str:
    return f"{fn.name}({_x(fn.args, 60)})"


def _rationale(tree: ast.Module, main: ast.AST | None, backward: bool) -> str:
    nodes = list(ast.walk(main if main is not None else tree))
    features = []
    loops = sum(isinstance(n, ast.For | ast.While | ast.comprehension) for n in nodes)
    if loops:
        features.append("nested iteration" if loops > 1 else "a single pass over the input")
    if any(isinstance(n, ast.If | ast.IfExp) for n in nodes):
        features.append("a case distinction")
    if any(isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and main is not None
           and n.func.id == getattr(main, "name", None) for n in nodes):
        features.append("recursion")
    if not features:
        features.append("one direct expression")
    how = "Read back from the given solution" if backward else "A direct approach"
    return f"{how}: {', '.join(features)}."
