"""Mutants: AST mutations that keep a program runnable but (usually) change what it computes.

Two users: the simulated teacher plants one as a bug (``plant_bug``), and the solve graph judges a
test suite by how many mutants of the accepted code it kills (``graphs._adequacy``).

Each kind lists its sites in a tree and applies itself to the n-th site of a fresh parse, so every
candidate is derived from the original alone. ``mutants`` yields them in a fixed order (kinds in
the order of ``MUTATIONS``, sites in ``ast.walk`` order); ``bench/make_sandbox_programs.py`` picks
from that order, the simulator's coder picks one by a seeded hash (``plant_bug``).
"""

from __future__ import annotations

import ast
import hashlib
import types
from collections.abc import Callable, Iterator
from functools import lru_cache
from typing import TypeGuard

from codestill.pysrc import parse_quietly

_CMP_FLIP: dict[type, type] = {
    ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt, ast.Eq: ast.NotEq, ast.NotEq: ast.Eq,
}
_CMP_TEXT = {ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.Eq: "==", ast.NotEq: "!="}


def _compare_sites(tree: ast.AST) -> Iterator[tuple[ast.Compare, int]]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            for i, op in enumerate(node.ops):
                if type(op) in _CMP_FLIP:
                    yield node, i


def _compare_flip(tree: ast.AST, n: int) -> str | None:
    for k, (node, i) in enumerate(_compare_sites(tree)):
        if k == n:
            old = type(node.ops[i])
            node.ops[i] = _CMP_FLIP[old]()
            return f"compare_flip: {_CMP_TEXT[old]} -> {_CMP_TEXT[_CMP_FLIP[old]]} (line {node.lineno})"
    return None


def _int_plus_one(tree: ast.AST, n: int) -> str | None:
    sites = (node for node in ast.walk(tree)
             if isinstance(node, ast.Constant) and type(node.value) is int)
    for k, node in enumerate(sites):
        old = node.value
        if k == n and type(old) is int:  # every site's is (sites); the check tells the type checker
            node.value = old + 1
            return f"int_plus_one: {old} -> {old + 1} (line {node.lineno})"
    return None


def _with_op(node: ast.AST, node_types: type | types.UnionType) -> TypeGuard[ast.BinOp | ast.AugAssign | ast.BoolOp]:
    """``node`` is one of ``node_types``: nodes with an operator (``_op_swap``'s, those three)."""
    return isinstance(node, node_types)


def _op_swap(label: str, node_types: type | types.UnionType, first: type, second: type,
             text: tuple[str, str]) -> Callable[[ast.AST, int], str | None]:
    """A mutation that swaps two operators (``first`` <-> ``second``) at the n-th site."""

    def mutate(tree: ast.AST, n: int) -> str | None:
        sites = (node for node in ast.walk(tree)
                 if _with_op(node, node_types) and isinstance(node.op, first | second))
        for k, node in enumerate(sites):
            if k == n:
                forward = isinstance(node.op, first)
                node.op = second() if forward else first()
                return f"{label}: {text[0] if forward else text[1]} (line {node.lineno})"
        return None

    return mutate


_add_sub_swap = _op_swap("add_sub_swap", ast.BinOp | ast.AugAssign, ast.Add, ast.Sub, ("+ -> -", "- -> +"))
_and_or_swap = _op_swap("and_or_swap", ast.BoolOp, ast.And, ast.Or, ("and -> or", "or -> and"))


def _negate_return(tree: ast.AST, n: int) -> str | None:
    sites = (node for node in ast.walk(tree) if isinstance(node, ast.Return) and node.value is not None)
    for k, node in enumerate(sites):
        value = node.value
        if k == n and value is not None:  # every site's is (sites); the check tells the type checker
            node.value = ast.UnaryOp(op=ast.Not(), operand=value)
            return f"negate_return: return x -> return not x (line {node.lineno})"
    return None


MUTATIONS: tuple[Callable[[ast.AST, int], str | None], ...] = (
    _compare_flip, _int_plus_one, _add_sub_swap, _and_or_swap, _negate_return,
)
# The kinds that read like a slip a model makes (a bound, a comparison, a sign); the others are
# used only when a program has none of these sites.
_SUBTLE = ("compare_flip", "int_plus_one", "add_sub_swap")


def mutants(code: str) -> Iterator[tuple[str, str]]:
    """(mutated source, description) for every site of every kind, in the fixed order."""
    original = ast.unparse(parse_quietly(code))
    seen = {original}
    for mutate in MUTATIONS:
        n = 0
        while True:
            tree = parse_quietly(code)
            what = mutate(tree, n)
            if what is None:
                break
            n += 1
            source = ast.unparse(ast.fix_missing_locations(tree))
            if source not in seen:
                seen.add(source)
                yield source, what


@lru_cache(maxsize=2048)
def _candidates(code: str) -> tuple[tuple[str, str], ...]:
    """The mutants that still compile, subtle kinds only when there are any (cached: AST work)."""
    found = []
    for source, what in mutants(code):
        try:
            compile(source, "<mutant>", "exec")
        except (SyntaxError, ValueError):  # e.g. a constant folded into an invalid literal
            continue
        found.append((source, what))
    subtle = [m for m in found if m[1].split(":")[0] in _SUBTLE]
    return tuple(subtle or found)


def plant_bug(code: str, key: str) -> tuple[str, str] | None:
    """One mutant of ``code`` chosen by ``key`` (a stable string: seed, problem, choice), or None."""
    candidates = _candidates(code)
    if not candidates:
        return None
    pick = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") % len(candidates)
    return candidates[pick]
