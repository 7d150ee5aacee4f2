"""What the simulator knows beyond MBPP and HumanEval: seed functions a user hands it (``--knowledge``).

SelfCodeAlign writes new instructions from seed functions mined out of real code. A real teacher
then solves its own instruction; the simulator cannot invent solutions, so it is given the seeds
(``codestill.schemas.Seed`` JSONL, as ``codestill seeds mine`` writes) and treats each as one more
problem it knows: the reference is the seed's code, the instruction a fixed text built from its
name, def line and docstring (``seed_instruction``), and the tests are worked out by running the
seed (``seed_tests``): calls with guessed arguments — the docstring's ``>>>`` examples first, then
values picked from each parameter's annotation and name (parameters with defaults are left out) — kept where the seed returns the
same plain value twice (two hash seeds, CPU budgets: ``_strong``'s child process).

The conceptor's concepts are read off a function's AST (``concepts_of``): a short fixed vocabulary
of constructs plus one domain concept from the function's name. The instruction writer maps concepts
back to the known seed whose concepts overlap most, so it only ever writes instructions it can solve.
"""

from __future__ import annotations

import ast
import hashlib
import random
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from codestill.data import BankProblem
from codestill.pysrc import parse_quietly
from codestill.records import read_jsonl
from codestill.schemas import Seed, TestSuite
from codestill.sim._strong import Probe, _call_source, _source, run_probes

SEED_TESTS = 8  # asserts per seed, at most
SEED_CANDIDATES = 32  # guessed calls run through the seed, at most
SEED_HEADER = "# Calls with their values, worked out by running the trusted solution."
DOC_CHARS = 600  # longest docstring excerpt quoted in an instruction

_STR = ("hello world", "", "Hello, World!", "a-b_c d")
_INT = (3, 0, 1, 10, -2)
_FLOAT = (2.5, 0.0, 1.0, -1.5)
_LIST = ([3, 1, 2], [], ["b", "a", "c"], [1, 1, 2])
_DICT = ({"a": 1, "b": 2}, {})
_BOOL = (True, False)
_BYTES = (b"hello", b"")
_TUPLE = ((1, 2), ())
_BY_ANNOTATION = {"str": _STR, "int": _INT, "float": _FLOAT, "bool": _BOOL, "bytes": _BYTES, "list": _LIST,
                  "dict": _DICT, "tuple": _TUPLE, "Sequence": _LIST, "Iterable": _LIST, "Mapping": _DICT}
# Parameter names people give values of one type, tried before the generic fallback.
_BY_NAME: tuple[tuple[re.Pattern[str], tuple[Any, ...]], ...] = (
    (re.compile(r"^(is_|has_|use_|allow|strict|reverse|ignore|keep|verbose|flag)"), _BOOL),
    (re.compile(r"^(n|i|j|k|count|size|width|height|length|num\w*|index|idx|pos|start|stop|end|level|indent"
                r"|depth|limit|max\w*|min\w*|offset|year|month|day|port|bits|base)$"), _INT),
    (re.compile(r"^(x|y|z|ratio|scale|rate|alpha|weight|number|r|g|h|l|v)$"), _FLOAT),
    (re.compile(r"^(b|buf|buffer|raw|octets|bytes\w*)$"), _BYTES),
    (re.compile(r"^(items|seq|sequence|lst|values|iterable|elements|xs|numbers|nums|words|lines|names|strings"
                r"|parts|pairs|arr|array|vector|data|list\w*)$"), _LIST),
    (re.compile(r"^(d|dct|mapping|table|env|headers|options|dict\w*)$"), _DICT),
    (re.compile(r"^(s|text|string|str\w*|name|word|line|prefix|suffix|sep|pattern|url|path|filename|char|c|fmt"
                r"|template|label|key|title|value|msg|message|\w*_str|\w*name)$"), _STR),
)
_DOCTEST = re.compile(r"^\s*>>>\s*(.+)$", re.M)


def load_knowledge(paths: Sequence[str]) -> tuple[BankProblem, ...]:
    """The seeds in ``paths`` as problems (read with ``read_jsonl``: a bad file is one clear error)."""
    out: dict[str, BankProblem] = {}
    for path in paths:
        for seed in read_jsonl(Path(path), Seed):
            out.setdefault(seed.id, seed_problem(seed))
    return tuple(out.values())


def _summary(doc: str) -> str:
    """The docstring's prose before its examples, cut at a paragraph near ``DOC_CHARS``."""
    prose = doc.split(">>>", 1)[0].strip()
    paras = [p.strip() for p in re.split(r"\n\s*\n", prose) if p.strip()]
    kept: list[str] = []
    for p in paras:
        if kept and sum(map(len, kept)) + len(p) > DOC_CHARS:
            break
        kept.append(" ".join(p.split()))
    return "\n\n".join(kept)[: DOC_CHARS * 2]


def seed_instruction(seed: Seed) -> str:
    """The one instruction the simulator writes for ``seed`` (evolved texts quote it, so it is stable)."""
    sig = seed.signature.removeprefix("async ").removeprefix("def ").strip()
    what = _summary(seed.docstring) or f"It behaves as its name, {seed.name}, says."
    return f"Write a Python function `{sig}`. {what}"


def seed_problem(seed: Seed) -> BankProblem:
    return BankProblem(id=seed.id, source="seed", instruction=seed_instruction(seed), entry_point=seed.name,
                       signature=seed.signature, reference=seed.code, tests=TestSuite(code="", entry_point=seed.name))


# ---------------------------------------------------------------- concepts


def _name_words(name: str) -> str:
    return " ".join(w for w in re.split(r"_+|(?<=[a-z])(?=[A-Z])", name.strip("_")) if w).lower()


_CALL_CONCEPTS = {"sorted": "sorting", "sort": "sorting", "split": "string splitting", "join": "string joining",
                  "strip": "string cleaning", "replace": "string replacement", "startswith": "prefix checks",
                  "endswith": "suffix checks", "isinstance": "type checking", "enumerate": "enumeration",
                  "zip": "parallel iteration", "format": "string formatting", "encode": "text encoding",
                  "decode": "text decoding", "append": "list building", "get": "dictionary lookup",
                  "min": "minimum search", "max": "maximum search", "sum": "summation", "range": "index ranges",
                  "len": "length checks", "divmod": "integer division", "round": "rounding", "abs": "absolute values"}


_NODE_CONCEPTS: dict[type[ast.AST], str] = {
    ast.ListComp: "comprehensions", ast.SetComp: "comprehensions", ast.DictComp: "comprehensions",
    ast.GeneratorExp: "generator expressions", ast.For: "iteration", ast.AsyncFor: "iteration",
    ast.While: "while loops", ast.Try: "exception handling", ast.Raise: "input validation",
    ast.Yield: "generators", ast.YieldFrom: "generators", ast.Lambda: "lambda functions", ast.Slice: "slicing",
    ast.JoinedStr: "string formatting", ast.If: "conditional logic", ast.IfExp: "conditional logic"}


def concepts_of(code: str, name: str | None = None) -> tuple[str, ...]:
    """Programming concepts ``code`` exercises, in a fixed order; its main function's name adds a domain."""
    try:
        tree = parse_quietly(code)
    except (SyntaxError, ValueError):
        return ()
    fns = [n for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
    main = next((f for f in fns if f.name == name), fns[-1] if fns else None)
    found: list[str] = []

    def add(concept: str) -> None:
        if concept not in found:
            found.append(concept)

    for node in ast.walk(tree):
        kind = type(node)
        if kind in _NODE_CONCEPTS:
            add(_NODE_CONCEPTS[kind])
        elif type(node) is ast.BinOp and isinstance(node.op, ast.BitAnd | ast.BitOr | ast.BitXor | ast.LShift | ast.RShift):
            add("bit manipulation")
        elif type(node) is ast.Call:
            f = node.func
            called = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""
            if main is not None and called == main.name:
                add("recursion")
            elif isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) and f.value.id == "re":
                add("regular expressions")
            elif called in _CALL_CONCEPTS:
                add(_CALL_CONCEPTS[called])
    out = found[:6]
    if main is not None:
        out.append(f"{_name_words(main.name)} (domain)")
    return tuple(out)


def closest(concepts: Sequence[str], known: Sequence[tuple[BankProblem, tuple[str, ...]]], key: str) -> BankProblem | None:
    """The known seed whose concepts overlap ``concepts`` most (Jaccard at least 0.5); ties by ``key``."""
    want = {c.strip().lower() for c in concepts if c.strip()}
    if not want:
        return None
    scored = []
    for problem, theirs in known:
        have = {c.lower() for c in theirs}
        score = len(want & have) / len(want | have) if have else 0.0
        tie = hashlib.sha256(f"{key}|{problem.id}".encode()).hexdigest()
        scored.append((score, tie, problem))
    if not scored:
        return None
    score, _, best = max(scored, key=lambda t: (t[0], t[1]))
    return best if score >= 0.5 else None


# ---------------------------------------------------------------- tests by running the seed


def _main(code: str, name: str) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
    tree = parse_quietly(code)
    return next((n for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef) and n.name == name), None)


def _candidates(arg: ast.arg) -> tuple[Any, ...]:
    """Values to try for a required parameter: by its annotation, then its name, else common kinds."""
    values: list[Any] = []
    if arg.annotation is not None:
        head = ast.unparse(arg.annotation).split("[", 1)[0].split(".")[-1].split("|")[0].strip()
        values += _BY_ANNOTATION.get(head, ())
    for pattern, typed in _BY_NAME:
        if pattern.search(arg.arg):
            values += typed
            break
    if not values:  # nothing says what it takes: try the common kinds
        values += [*_STR, *_INT, *_LIST]
    out: list[Any] = []
    for v in values:
        if all(_source(v) != _source(w) for w in out):
            out.append(v)
    return tuple(out)


def guessed_calls(code: str, name: str, docstring: str, key: str) -> list[str]:
    """Call expressions of ``name`` to run: its docstring's examples, then guessed arguments."""
    fn = _main(code, name)
    if fn is None:
        return []
    calls: list[str] = []
    for line in _DOCTEST.findall(docstring):
        try:
            expr = ast.parse(line.strip(), mode="eval").body
        except SyntaxError:
            continue
        if isinstance(expr, ast.Call) and isinstance(expr.func, ast.Name) and expr.func.id == name and all(
                _literal_ok(a) for a in [*expr.args, *(k.value for k in expr.keywords)]):
            calls.append(ast.unparse(expr))
    a = fn.args
    positional = [*a.posonlyargs, *a.args]
    if positional and positional[0].arg in ("self", "cls"):
        return calls
    defaults: list[ast.expr | None] = [None] * (len(positional) - len(a.defaults)) + list(a.defaults)
    required = [(arg, d) for arg, d in zip(positional, defaults, strict=True) if d is None]
    if not required:
        return calls
    options = [_candidates(arg) for arg, _ in required]
    rng = random.Random(int.from_bytes(hashlib.sha256(f"{key}|guess".encode()).digest()[:8], "big"))
    seen = set(calls)
    picks = [[k % len(o) for o in options] for k in range(max(len(o) for o in options))]
    picks += [[rng.randrange(len(o)) for o in options] for _ in range(SEED_CANDIDATES)]
    for pick in picks:
        try:
            source = ast.unparse(_call_source(name, [o[i] for o, i in zip(options, pick, strict=True)], []))
        except (SyntaxError, ValueError, RecursionError):
            continue
        if source not in seen:
            seen.add(source)
            calls.append(source)
    return calls[:SEED_CANDIDATES]


def _literal_ok(node: ast.AST) -> bool:
    try:
        ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False
    return True


def seed_tests(problem: BankProblem, seed: int) -> str:
    """Asserts for a seed problem, expected values from running it; "" when no call gave a plain value."""
    fn = _main(problem.reference, problem.entry_point)
    docstring = (ast.get_docstring(fn) or "") if fn is not None else ""
    calls = guessed_calls(problem.reference, problem.entry_point, docstring, f"{seed}|{problem.id}")
    return run_probes(problem, [], [Probe(c, "eq") for c in calls], SEED_TESTS, SEED_HEADER) if calls else ""
