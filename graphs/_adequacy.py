"""Test adequacy by mutation: a suite that cannot tell the code from a slightly wrong copy of it
proves nothing about the code.

Before a passing solution is accepted, its suite runs in the sandbox against up to ``k`` mutants
of that solution (``tools.mutants``: a flipped comparison, a constant off by one, ``+`` for ``-``,
``and`` for ``or``, a negated return). A mutant the suite fails on is *killed*. The score is
killed / judged, where judged leaves out the mutants the sandbox could not run (``infra_error``).

Some mutants are *equivalent*: ``i < n`` and ``i <= n - 1`` compute the same thing, and no test
can kill them. Deciding equivalence is undecidable in general, so the threshold
(``SolveConfig.min_mutation_score``) sits below 1 to leave room for them; the survivors are shown
to the tester as counterexamples, and a tester shown an equivalent one can only fail to kill it
again, which costs one round, never a wrong accept.

Which mutants: a deterministic sample (keyed on the code) of those that compile, so a rerun judges
the same suite against the same mutants.

A program's stdin/stdout suite is judged the same way, each mutant run as a script against its cases,
with one difference: mutants of a line that reads the input (``input(``, ``sys.stdin``) or tests
``__name__`` (the main guard) are left out before sampling. Any case at all kills a script that never
runs its main or misreads every input, so those mutants would count as kills that say nothing about
the cases; what is judged is whether the cases tell apart the logic, as for a function's asserts.
Lines that print stay: a program often computes its answer inside the ``print(...)``.
"""

from __future__ import annotations

import ast
import asyncio
import re
from dataclasses import dataclass

from agents._common import keyed_random
from codestill.ports import Sandbox
from codestill.pysrc import parse_quietly
from codestill.schemas import ExecResult, TestSuite
from tools.mutants import mutants


@dataclass(frozen=True)
class Adequacy:
    killed: int
    judged: int
    survivors: tuple[str, ...]  # "line 3: `if a < b:` -> `if a <= b:` (compare_flip)", at most a few

    @property
    def score(self) -> float | None:
        """killed / judged; None when no mutant could be judged (nothing to mutate, or no sandbox)."""
        return self.killed / self.judged if self.judged else None


# A line of a program's plumbing: reading stdin, or the main guard.
_IO_LINE = re.compile(r"\binput\s*\(|\bsys\.stdin\b|\b__name__\b")
_LINE = re.compile(r"\(line (\d+)\)")


def plumbing_lines(code: str) -> frozenset[int]:
    """The numbers of the lines of ``code`` that read the input or test ``__name__`` (``_IO_LINE``)."""
    return frozenset(n for n, line in enumerate(code.splitlines(), 1) if _IO_LINE.search(line))


def sample_mutants(code: str, k: int, skip_lines: frozenset[int] = frozenset()) -> list[tuple[str, str]]:
    """Up to ``k`` compiling mutants of ``code``, picked by a generator seeded with the code; none of
    a line in ``skip_lines`` (where the mutation says its line)."""
    found = []
    try:
        for source, what in mutants(code):
            at = _LINE.search(what)
            if skip_lines and at is not None and int(at.group(1)) in skip_lines:
                continue
            try:
                compile(source, "<mutant>", "exec")
            except (SyntaxError, ValueError):
                continue
            found.append((source, what))
    except (SyntaxError, ValueError, RecursionError):
        return []
    if len(found) > k:
        found = keyed_random(code).sample(found, k)
    return found


async def judge_suite(sandbox: Sandbox, code: str, suite: TestSuite, k: int) -> Adequacy:
    """Run ``suite`` against up to ``k`` mutants of ``code`` (the code itself passed it); for an io
    suite, none of a line that reads the input or is the main guard."""
    skip = plumbing_lines(code) if suite.kind == "io" else frozenset()
    chosen = await asyncio.to_thread(sample_mutants, code, k, skip)  # AST work: off the shared event loop
    results: list[ExecResult] = await asyncio.gather(*(sandbox.run(source, suite) for source, _ in chosen))
    killed = judged = 0
    survivors: list[str] = []
    original = _lines(code)
    for (source, what), result in zip(chosen, results, strict=True):
        if result.status == "infra_error":
            continue
        judged += 1
        if result.passed:
            survivors.append(_describe(original, source, what))
        else:
            killed += 1
    return Adequacy(killed=killed, judged=judged, survivors=tuple(survivors))


def _lines(code: str) -> list[str]:
    """The code as the mutants print it (``ast.unparse``), line by line, to compare them with."""
    try:
        return ast.unparse(parse_quietly(code)).splitlines()
    except (SyntaxError, ValueError, RecursionError):
        return []


def _describe(before: list[str], mutant: str, what: str) -> str:
    """The mutant as the tester sees it: the changed line before and after."""
    kind, _, where = what.partition(": ")
    changed = next(((b, a) for b, a in zip(before, mutant.splitlines(), strict=False) if b != a), None)
    if changed is None:
        return f"{kind}: {where}"
    return f"`{changed[0].strip()}` -> `{changed[1].strip()}` ({kind}, {where.split('(')[-1].rstrip(')')})"
