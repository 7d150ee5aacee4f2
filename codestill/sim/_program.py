"""Program tasks (SelfCodeAlign's "program" category) in the simulator: a script over a function it knows.

    program_instruction(problem, difficulty)   the conceptor's instruction: the known problem's own
                                               instruction quoted verbatim (every later request finds the
                                               problem by it, ``_bank``), then ``IO_SENTENCE``: the program
                                               reads the entry point's arguments from stdin, one Python
                                               literal per line, and prints the repr of the result
    asks_program(text)                         a request about such a task: ``IO_SENTENCE`` is in it
    script(code, entry)                        the coder's answer: ``code`` (the reference, or a mutant of
                                               it) and a ``main`` that reads the arguments with
                                               ``ast.literal_eval``, calls the entry point and prints repr()
    case_job(problem, tests) / run_cases(job)  the tester's stdin/stdout cases: the calls of the problem's
                                               correct suite whose arguments are literals, each argument a
                                               line of the input, the output the repr of what the reference
                                               returns (run in ``_strong``'s child processes, twice with
                                               different hash seeds: a case is kept only where both agree)
    flawed_cases(kind, cases, u)               a realistic tester's flawed cases (``IO_FLAWS``)

The realistic flaws (``_teacher``): the tester's ``wrong_output`` (one expected output changed: the run
fails on the right program and is disputed), ``too_few`` (one case: refused), ``same_output`` (every case
expects the first one's output: weak); the coder's ``planted_bug`` (the script over a mutant).
"""

from __future__ import annotations

import ast
import hashlib
import json
import re
from dataclasses import dataclass

from codestill.data import BankProblem
from codestill.pysrc import parse_quietly, parses
from codestill.sim._strong import _run, _source
from codestill.sim._suites import _perturbed, read_suite

IO_SENTENCE = ("The program reads the arguments of `{entry}` from standard input, one Python literal per line, "
               "in the order {params}, and prints the repr() of the result on one line, and nothing else.")
_ASKS = re.compile(r"reads the arguments of `[A-Za-z_]\w*` from standard input, one Python literal per line")
IO_FLAWS = ("wrong_output", "too_few", "same_output")
Cases = tuple[tuple[str, str], ...]  # (stdin, expected stdout)


def _params(code: str, entry: str) -> list[str]:
    try:
        tree = parse_quietly(code)
    except (SyntaxError, ValueError):
        return []
    fn = next((n for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef) and n.name == entry),
              None)
    return [a.arg for a in [*fn.args.posonlyargs, *fn.args.args]] if fn is not None else []


def program_instruction(problem: BankProblem, difficulty: str) -> str:
    a = "An" if difficulty[:1].lower() in "aeiou" else "A"
    params = ", ".join(f"`{p}`" for p in _params(problem.reference, problem.entry_point)) or "of its parameters"
    io = IO_SENTENCE.format(entry=problem.entry_point, params=params)
    return (f"{a} {difficulty} program task.\n\nWrite a complete Python program (a script run with its input on "
            f"standard input) for this problem:\n\n{problem.instruction}\n\n{io}")


def asks_program(text: str) -> bool:
    return _ASKS.search(text) is not None


def script(code: str, entry: str) -> str:
    """``code`` as a program: a main that reads the arguments (one literal per line), calls ``entry``
    and prints the repr of what it returns, run under the main guard."""
    defined = {n.name for n in ast.walk(parse_quietly(code)) if isinstance(n, ast.FunctionDef)} \
        if parses(code) else set()
    main = next(n for n in ("main", "run_program", "program_main") if n not in defined)
    return (f"{code.rstrip()}\n\n\n"
            f"def {main}() -> None:\n"
            f'    """Read the arguments of {entry}, one Python literal per line, and print the repr of its result."""\n'
            "    import ast\n    import sys\n\n"
            "    args = [ast.literal_eval(line) for line in sys.stdin.read().splitlines() if line.strip()]\n"
            f"    print(repr({entry}(*args)))\n\n\n"
            f'if __name__ == "__main__":\n    {main}()\n')


@dataclass(frozen=True)
class CaseJob:
    """The reference of ``problem`` to run on ``calls``: (call expression, the stdin that gives its arguments)."""

    problem: BankProblem
    calls: tuple[tuple[str, str], ...]

    @property
    def key(self) -> str:
        return hashlib.sha256(json.dumps([self.problem.reference, self.calls]).encode()).hexdigest()


def case_job(problem: BankProblem, tests: str) -> CaseJob | None:
    """The calls of the correct suite ``tests`` whose arguments are all literals (no keywords), each
    input once; None when there is none."""
    calls: dict[str, str] = {}
    for case in read_suite(tests, problem.entry_point).cases:
        if case.args is None or case.kwargs:
            continue
        try:
            values = [ast.literal_eval(a) for a in case.args]
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            continue
        shown = [_source(v) for v in values]
        stdin = "".join(f"{s}\n" for s in shown)
        calls.setdefault(stdin, f"{problem.entry_point}({', '.join(shown)})")
    return CaseJob(problem, tuple((call, stdin) for stdin, call in calls.items())) if calls else None


def run_cases(job: CaseJob) -> Cases:
    """(stdin, repr of the reference's result + newline) where both runs gave the same plain value."""
    first, second = _run(job.problem, [], [call for call, _ in job.calls])
    out = []
    for i, (_, stdin) in enumerate(job.calls):
        a, b = first.get(i), second.get(i)
        if a and b and a.get("ok") and b.get("ok") and a["repr"] == b["repr"]:
            out.append((stdin, a["repr"] + "\n"))
    return tuple(out)


def flawed_cases(kind: str, cases: Cases, u: float) -> Cases | None:
    """``cases`` spoiled as ``kind`` (``IO_FLAWS``), or None where the kind cannot spoil them; ``u`` in
    [0, 1) picks the case a ``wrong_output`` changes."""
    if not cases:
        return None
    if kind == "too_few":
        return cases[:1] if len(cases) > 1 else None
    if kind == "same_output":
        return tuple((stdin, cases[0][1]) for stdin, _ in cases) if len(cases) > 1 else None
    if kind == "wrong_output":
        start = int(u * len(cases))
        for i in (*range(start, len(cases)), *range(start)):
            try:
                ok, new = _perturbed(ast.literal_eval(cases[i][1]))
            except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
                continue
            if ok:
                changed = list(cases)
                changed[i] = (cases[i][0], _source(new) + "\n")
                return tuple(changed)
    return None
