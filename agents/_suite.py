"""What a test suite must be before its verdict can count: the deterministic half of the tester's gate.

A suite written by a model is refused (and goes back to the tester with the reason) when it:

- does not parse;
- defines or rebinds a name of the code under test (the entry point, or one of the candidate's own
  top-level functions and classes): run in the candidate's namespace, its own ``def f`` would replace
  the candidate and its tests would pass whatever the candidate does;
- defines pytest-style ``test_*`` functions that nothing calls (their asserts never run);
- calls the entry point with concrete arguments and compares the result with a concrete expected
  value for fewer than ``min_inputs`` distinct inputs. ``f(1) == f(1)``, type or length checks,
  asserts on a helper of the tests' own and ``f(x) == expected(x)`` with ``expected`` written in the
  tests prove nothing about ``f``.

Concrete means: the arguments and the expected value are literals, or expressions of literals and
builtins (``float('inf')``, ``[0] * 5``, ``set([1, 2])``), never a variable of the tests and never a
call of the code under test. In a HumanEval ``check(candidate)`` suite, ``candidate`` is the entry point.

``special_cases`` is the other check of this module: code that answers a test's exact input with
that test's exact expected value (``if (a, b) == ((3, 4), (5, 4)): return (4,)``) passes the test
without solving anything, as a coder told to repair against a test sometimes does.

A program's stdin/stdout cases (``io_refusal``, ``io_special_cases``) are refused when there is no case,
when fewer than ``min_inputs`` distinct inputs are given, when two cases give one input different
outputs (the suite contradicts itself), or when they are weak (``_weak.weak_io``: every output empty,
or one output for every input). A program special-cases a case when its source holds both the case's
input and its expected output as literals (a string equal to the input, ends stripped; a string or
number equal to the output, likewise): ``if data == "3 4": print(7)``. Inputs as plain as a base case
("0", "1", "[]" ...) are left alone, as above.
"""

from __future__ import annotations

import ast
import builtins
import functools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from agents._weak import SHAPE_CALLS, VALUE_WORDS, call_name, io_lines, weak_io
from codestill.pysrc import parse_quietly
from codestill.schemas import IOCase

_BUILTINS = frozenset(dir(builtins))
# Inputs too plain to tell a hard-coded answer from a base case (``if n == 0: return 1``).
# What a value of the entry point may go through and still count as unchecked: ``_weak``'s type and size
# calls, and truthiness and hashes.
_SHAPE = SHAPE_CALLS | {"hash", "bool"}
_TRIVIAL = (0, 1, -1, 2, "", (), None, True, False)


@dataclass(frozen=True)
class Check:
    """One assert that calls the entry point on concrete arguments against a concrete value."""

    args: str  # ast.dump of the arguments: what makes two inputs the same
    call: ast.Call
    expected: ast.expr | None  # None: a truthiness assert (``assert f(x)`` / ``assert not f(x)``)


@functools.lru_cache(maxsize=1024)
def defined_names(code: str) -> frozenset[str]:
    """The top-level functions and classes of ``code`` (nothing if it does not parse)."""
    try:
        tree = parse_quietly(code)
    except (SyntaxError, ValueError):
        return frozenset()
    return frozenset(n.name for n in tree.body
                     if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef))


def refusal(tests: str, entry_point: str | None, candidate: frozenset[str], min_inputs: int,
            given_inputs: int = 0) -> str | None:
    """Why the written ``tests`` cannot judge the candidate, or None. ``candidate``: the names the
    code under test defines; ``given_inputs``: distinct inputs the task's own tests already check."""
    return _refusal(tests, entry_point, candidate, min_inputs, given_inputs)


@functools.lru_cache(maxsize=1024)
def _refusal(tests: str, entry: str | None, candidate: frozenset[str], min_inputs: int,
             given: int) -> str | None:
    try:
        tree = parse_quietly(tests)
    except (SyntaxError, ValueError) as e:
        return f"the tests do not parse: {type(e).__name__}: {e}"
    protected = candidate | ({entry} if entry else frozenset())
    rebound = sorted(protected & _bound_names(tree))
    if rebound:
        names = ", ".join(f"`{n}`" for n in rebound)
        return (f"the tests define or assign {names}, a name of the code under test: tests must call the "
                "solution, never replace it (no def, class, import or assignment of these names)")
    uncalled = _uncalled_tests(tree)
    if uncalled:
        return (f"the tests define {', '.join(f'`{n}`' for n in uncalled[:5])} but nothing calls them, so their "
                "asserts never run: write plain top-level assert statements")
    if not entry:
        return None
    found = {c.args for c in _checks(tree, entry)}
    if len(found) + given >= min_inputs:
        return None
    if not found:
        return (f"no assert compares a call of `{entry}` on concrete arguments with a concrete expected value "
                f"(tautologies such as `{entry}(x) == {entry}(x)`, type or length checks, and asserts on other "
                "functions prove nothing)")
    return (f"the tests check only {len(found)} distinct input(s) of `{entry}` against a concrete expected "
            f"value; write at least {min_inputs - given}, covering the edge cases the task implies")


def checks(tests: str, entry: str) -> list[Check]:
    """Every assert of ``tests`` that calls ``entry`` on concrete arguments against a concrete value."""
    try:
        tree = parse_quietly(tests)
    except (SyntaxError, ValueError):
        return []
    return _checks(tree, entry)


def _checks(tree: ast.Module, entry: str) -> list[Check]:
    local = _bound_names(tree) - {entry}
    out: list[Check] = []
    for node, names in _asserts(tree, entry):
        out.extend(_checks_in(node.test, names, local))
    return out


def distinct_inputs(tests: str, entry: str | None) -> int:
    return len({c.args for c in checks(tests, entry)}) if entry else 0


def _asserts(tree: ast.Module, entry: str) -> Iterator[tuple[ast.Assert, frozenset[str]]]:
    """Each assert with the names that stand for the entry point where it is (``candidate`` inside
    a ``def check(candidate)``)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name == "check" and node.args.args:
            alias = frozenset({entry, node.args.args[0].arg})
            for inner in ast.walk(node):
                if isinstance(inner, ast.Assert):
                    yield inner, alias
    checked = {id(a) for f in ast.walk(tree) if isinstance(f, ast.FunctionDef) and f.name == "check"
               for a in ast.walk(f) if isinstance(a, ast.Assert)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assert) and id(node) not in checked:
            yield node, frozenset({entry})


def _checks_in(test: ast.expr, entry: frozenset[str], local: frozenset[str]) -> Iterator[Check]:
    if isinstance(test, ast.BoolOp) and isinstance(test.op, ast.And):
        for v in test.values:
            yield from _checks_in(v, entry, local)
        return
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        test = test.operand
    if isinstance(test, ast.Call) and _is_entry_call(test, entry, local):
        yield Check(_args_key(test), test, None)
        return
    if isinstance(test, ast.Call) and test.args and any(w in call_name(test.func).lower() for w in VALUE_WORDS):
        # math.isclose(f(x), 2.5), np.array_equal(...): a comparison in a function's clothes
        parts = list(test.args)
        calls = [c for p in parts for c in _entry_calls(p, entry, local)]
        rest = [p for p in parts if not _calls_entry(p, entry)]
        if calls and rest and all(_concrete(p, local) for p in rest):
            yield from (Check(_args_key(c), c, rest[0]) for c in calls)
        return
    if not isinstance(test, ast.Compare) or len(test.ops) != 1:
        return
    if not isinstance(test.ops[0], ast.Eq | ast.Is | ast.In | ast.NotEq | ast.IsNot | ast.NotIn):
        return
    left, right = test.left, test.comparators[0]
    for side, other in ((left, right), (right, left)):
        calls = list(_entry_calls(side, entry, local))
        if calls and not _calls_entry(other, entry) and _concrete(other, local):
            if isinstance(test.ops[0], ast.NotEq | ast.IsNot | ast.NotIn) and not _is_bool(other):
                return  # `f(x) != 3` rules one value out, expects none
            yield from (Check(_args_key(c), c, other) for c in calls)
            return


def _is_bool(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, bool)


def _entry_calls(node: ast.expr, entry: frozenset[str], local: frozenset[str]) -> Iterator[ast.Call]:
    """The entry calls in ``node`` whose value reaches the comparison: not those seen only through
    a type, length or truthiness (``len(f(x)) == 3`` expects no value of ``f``)."""
    if isinstance(node, ast.Call) and call_name(node.func) in _SHAPE:
        return
    if isinstance(node, ast.Call) and _is_entry_call(node, entry, local):
        yield node
        return
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.expr):
            yield from _entry_calls(child, entry, local)


def _is_entry_call(node: ast.Call, entry: frozenset[str], local: frozenset[str]) -> bool:
    return (isinstance(node.func, ast.Name) and node.func.id in entry
            and all(_concrete(a, local) for a in node.args)
            and all(_concrete(k.value, local) for k in node.keywords))


def _calls_entry(node: ast.expr, entry: frozenset[str]) -> bool:
    return any(isinstance(s, ast.Name) and s.id in entry for s in ast.walk(node))


def _concrete(node: ast.expr, local: frozenset[str]) -> bool:
    """Literals and builtins only: no variable or function of the tests, no call of the code."""
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name) and (sub.id in local or sub.id not in _BUILTINS):
            return False
        if isinstance(sub, ast.Lambda | ast.NamedExpr | ast.Await | ast.Yield | ast.YieldFrom):
            return False
        if isinstance(sub, ast.Attribute) and not isinstance(sub.value, ast.Name | ast.Constant | ast.Attribute):
            return False
    return True


def _args_key(call: ast.Call) -> str:
    return ast.dump(ast.Tuple([*call.args, *(k.value for k in call.keywords)], ast.Load()))


def _bound_names(tree: ast.Module) -> frozenset[str]:
    """Every name the tests bind, at any depth: defs, classes, assignments, imports, loop targets,
    ``global`` statements, and ``globals()[...]`` / ``setattr`` with a string name."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store | ast.Del):
            names.add(node.id)
        elif isinstance(node, ast.alias):
            names.add((node.asname or node.name).split(".")[0])
        elif isinstance(node, ast.Global):
            names.update(node.names)
        elif isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Store) \
                and isinstance(node.slice, ast.Constant) and isinstance(node.slice.value, str):
            names.add(node.slice.value)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "setattr" \
                and len(node.args) >= 2 and isinstance(node.args[1], ast.Constant) \
                and isinstance(node.args[1].value, str):
            names.add(node.args[1].value)
    return frozenset(names)


def _uncalled_tests(tree: ast.Module) -> list[str]:
    defined = [n.name for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
               and n.name.startswith("test")]
    called = {s.id for s in ast.walk(tree) if isinstance(s, ast.Name) and isinstance(s.ctx, ast.Load)}
    return [n for n in defined if n not in called]


def special_cases(code: str, tests: str, entry: str | None) -> list[str]:
    """The tests whose exact input the code answers with that test's exact expected value, as
    "`<call>` is answered by a literal on line N": a comparison of the parameters with the test's
    arguments guarding a ``return`` of its expected value. Base-case-like inputs (0, 1, "", [] ...)
    are left alone: ``if n == 0: return 1`` is how factorials start."""
    if not entry:
        return []
    try:
        tree = parse_quietly(code)
    except (SyntaxError, ValueError):
        return []
    wanted: dict[str, tuple[ast.Call, object]] = {}
    for c in checks(tests, entry):
        args, expected = _literal(ast.Tuple(list(c.call.args), ast.Load())), _literal(c.expected)
        if not isinstance(args, tuple) or expected is _NO or all(_trivial(a) for a in args):
            continue
        wanted[repr(args)] = (c.call, expected)
    found: list[str] = []
    for fn in (n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)):
        params = [a.arg for a in fn.args.args]
        for node in ast.walk(fn):
            if not isinstance(node, ast.If) or not node.body or not isinstance(node.body[0], ast.Return):
                continue
            guarded = _guarded_input(node.test, params)
            returned = _literal(node.body[0].value) if node.body[0].value is not None else None
            if guarded is _NO or returned is _NO:
                continue
            hit = wanted.get(repr(guarded))
            if hit is not None and _same(hit[1], returned):
                found.append(f"`{ast.unparse(hit[0])}` is answered by a literal on line {node.lineno}")
    return found


_NO = object()


def _literal(node: ast.expr | None) -> object:
    if node is None:
        return _NO
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return _NO


def _trivial(value: object) -> bool:
    return any(type(value) is type(t) and value == t for t in _TRIVIAL) or value in ([], {}, set())


def _same(a: object, b: object) -> bool:
    try:
        return type(a) is type(b) and bool(a == b)
    except Exception:
        return False


def _guarded_input(test: ast.expr, params: list[str]) -> object:
    """The argument tuple an ``if`` compares all the parameters with (``a == 3``, ``(a, b) == (1, 2)``,
    ``a == 1 and b == 2``), or _NO."""
    pairs: dict[str, object] = {}
    parts = test.values if isinstance(test, ast.BoolOp) and isinstance(test.op, ast.And) else [test]
    for part in parts:
        if not (isinstance(part, ast.Compare) and len(part.ops) == 1 and isinstance(part.ops[0], ast.Eq | ast.Is)):
            return _NO
        left, right = part.left, part.comparators[0]
        if isinstance(right, ast.Name | ast.Tuple | ast.List) and _names_of(right) is not None \
                and _names_of(left) is None:
            left, right = right, left
        names, value = _names_of(left), _literal(right)
        if names is None or value is _NO:
            return _NO
        if isinstance(left, ast.Name):
            pairs[names[0]] = value
        elif isinstance(value, tuple | list) and len(value) == len(names):  # (a, b) == (1, 2), (xs,) == ([1],)
            pairs.update(zip(names, value, strict=True))
        else:
            return _NO
    if not params or set(pairs) != set(params):
        return _NO
    return tuple(pairs[p] for p in params)


def _names_of(node: ast.expr) -> list[str] | None:
    if isinstance(node, ast.Name):
        return [node.id]
    if isinstance(node, ast.Tuple | ast.List) and node.elts and all(isinstance(e, ast.Name) for e in node.elts):
        return [e.id for e in node.elts if isinstance(e, ast.Name)]
    return None


# ---- stdin/stdout cases ------------------------------------------------------------------------------

_TRIVIAL_TEXT = frozenset({"", "0", "1", "-1", "2", "[]", "()", "{}", "''", '""', "None", "True", "False"})


def io_inputs(cases: Sequence[IOCase]) -> int:
    """How many distinct inputs ``cases`` give (compared as the sandbox compares text: ``io_lines``)."""
    return len({io_lines(c.input) for c in cases})


def io_refusal(cases: Sequence[IOCase], min_inputs: int, given_inputs: int = 0) -> str | None:
    """Why written stdin/stdout ``cases`` cannot judge a program, or None. ``given_inputs``: distinct
    inputs the task's own cases already give."""
    if not cases:
        return "the tests have no stdin/stdout case: write each as an input and the exact output expected for it"
    seen: dict[tuple[str, ...], tuple[str, ...]] = {}
    for c in cases:
        key, out = io_lines(c.input), io_lines(c.output)
        if seen.setdefault(key, out) != out:
            return (f"two cases give the input {c.input[:80]!r} different expected outputs: a program can print "
                    "only one of them; keep the one the task demands")
    found = len(seen)
    if found + given_inputs < min_inputs:
        return (f"the tests have only {found} distinct input(s); write at least {min_inputs - given_inputs} cases "
                "with different inputs, covering the edge cases the task implies")
    return weak_io(cases)


def io_special_cases(code: str, cases: Sequence[IOCase]) -> list[str]:
    """The cases whose exact input and expected output are both literals of the program, as
    "`<input>` is answered by a literal on line N" (the line of the output literal)."""
    try:
        tree = parse_quietly(code)
    except (SyntaxError, ValueError):
        return []
    texts: set[str] = set()  # string literals: what stdin's text is compared with
    outputs: dict[str, int] = {}  # any literal, as printed: what a hard-coded answer prints
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and not isinstance(node.value, bytes | type(...)):
            text = str(node.value).strip()
            if isinstance(node.value, str):
                texts.add(text)
            outputs.setdefault(text, node.lineno)
    found: list[str] = []
    for c in cases:
        given, expected = c.input.strip(), c.output.strip()
        if given in _TRIVIAL_TEXT or given not in texts or expected not in outputs:
            continue
        found.append(f"the input {given[:60]!r} is answered by a literal on line {outputs[expected]}")
    return found
