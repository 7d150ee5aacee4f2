"""The realistic tester's mutant runs: a mutant of the reference (``tools.mutants``) run on the sides
of a suite's ``==`` asserts, in the child processes of ``_strong`` / ``_probe`` (a clean environment,
CPU budgets, two hash seeds: a value is kept only where both runs agree), so ``_suites`` can write the
mutant's values in as wrong expected values. ``MutantRuns`` caches them per app by job key (the mutant's
source, the imports, the expressions): the same request always gets the same values. The same cache runs
a program task's cases (``_program.run_cases``, by its own job key) when given that function.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from codestill.data import BankProblem
from codestill.sim._strong import _run
from codestill.sim._suites import Suite
from tools.mutants import plant_bug


@dataclass(frozen=True)
class MutantJob:
    """A mutant of a problem's reference, to be run on the eq sides of its suite's asserts."""

    problem: BankProblem
    program: str
    setup: tuple[str, ...]
    exprs: tuple[str, ...]

    @property
    def key(self) -> str:
        return hashlib.sha256(json.dumps([self.program, self.setup, self.exprs]).encode()).hexdigest()


def mutant_job(problem: BankProblem, suite: Suite, key: str) -> MutantJob | None:
    exprs = tuple(dict.fromkeys(x for c in suite.cases if c.mode == "eq" for x in (c.side, c.expected or "")))
    planted = plant_bug(problem.reference, key) if exprs else None
    return MutantJob(problem, planted[0], suite.setup, exprs) if planted else None


def run_mutant(job: MutantJob) -> tuple[tuple[str, str], ...]:
    """(expression, repr of its value) where the mutant gave the same plain value in both runs (``_strong``)."""
    first, second = _run(job.problem.model_copy(update={"reference": job.program}), list(job.setup), list(job.exprs))
    out = []
    for i, expr in enumerate(job.exprs):
        a, b = first.get(i), second.get(i)
        if a and b and a.get("ok") and b.get("ok") and a["repr"] == b["repr"]:
            out.append((expr, a["repr"]))
    return tuple(out)


class MutantRuns:
    """Per-app cache of ``run`` (``run_mutant`` unless told) by job key (child processes: the app calls
    ``get`` off its event loop)."""

    def __init__(self, parallel: int = 2, size: int = 4096,
                 run: Callable[[Any], tuple[tuple[str, str], ...]] = run_mutant) -> None:
        self._run = run
        self._done: OrderedDict[str, tuple[tuple[str, str], ...]] = OrderedDict()
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(parallel)
        self._size = size

    def cached(self, job: Any) -> tuple[tuple[str, str], ...] | None:
        with self._lock:
            return self._done.get(job.key)

    def get(self, job: Any) -> tuple[tuple[str, str], ...]:
        got = self.cached(job)
        if got is not None:
            return got
        with self._slots:
            try:
                got = self._run(job)
            except (OSError, ValueError, subprocess.SubprocessError):
                got = ()  # could not run it: the suite gets a perturbed value instead
        with self._lock:
            self._done[job.key] = got
            while len(self._done) > self._size:
                self._done.popitem(last=False)
        return got
