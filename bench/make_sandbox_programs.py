"""Build bench/data/sandbox_programs.jsonl: 200 MBPP programs with known sandbox verdicts.

Run once; its output is committed and read by ``bench/sandbox_throughput.py``::

    .venv/bin/python bench/make_sandbox_programs.py [--source /work/shared/data/sanitized-mbpp.json]

Source: MBPP's ``sanitized-mbpp.json`` (Austin et al. 2021, "Program Synthesis with Large
Language Models"), CC BY 4.0; see bench/data/NOTICE-MBPP.md.

Selection, deterministic: the problems, sorted by task_id, that have exactly three asserts and no
test imports, and whose reference solution passes its asserts in the sandbox using at most
``MAX_CPU_S`` of CPU time (the bench measures the sandbox, not one slow program). Positions 0, 2, 4...
of the output keep the reference solution; positions 1, 3, 5... get a planted bug: the first AST
mutation (kinds tried in the fixed order of ``MUTATIONS``, sites in ``ast.walk`` order) whose
sandbox verdict is "failed", or failing that the first whose verdict is "error" (within the same
CPU budget). A problem with
no such mutation is skipped for the next one. Every kept program has been run three times in the
sandbox with the same verdict (one run plus two confirmations); one whose verdict changes is
dropped. The verdict is recorded as ``expected``.
"""

from __future__ import annotations

import argparse
import ast
import asyncio
import json
import types
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from codestill.config import SandboxConfig
from codestill.schemas import Limits
from tools.sandbox import DockerSandbox

HERE = Path(__file__).resolve().parent
DEFAULT_SOURCE = HERE.parents[1] / "shared" / "data" / "sanitized-mbpp.json"  # the team's shared folder
OUT_DATA = HERE / "data" / "sandbox_programs.jsonl"
OUT_NOTICE = HERE / "data" / "NOTICE-MBPP.md"

N_PROGRAMS = 200
LIMITS = Limits(cpu_s=4)
CONFIRM_RUNS = 2  # extra runs of every kept program; its verdict must not change
MAX_CANDIDATES = 40  # mutated variants tried per problem, at most
MAX_CPU_S = 0.1  # MBPP-sized: a program that needs more CPU measures itself, not the sandbox
IN_FLIGHT = 16  # runs queued on the pool at once (keeps each wait well under start_timeout_s)


# ---------------------------------------------------------------------------------------------
# Mutations. Each kind lists its sites in a tree and applies itself to the n-th site of a fresh
# parse, so every candidate is derived from the reference alone.
# ---------------------------------------------------------------------------------------------

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
        if k == n:
            old = node.value
            node.value = old + 1
            return f"int_plus_one: {old} -> {old + 1} (line {node.lineno})"
    return None


def _op_swap(label: str, node_types: type | types.UnionType, first: type, second: type,
             text: tuple[str, str]) -> Callable[[ast.AST, int], str | None]:
    """A mutation that swaps two operators (``first`` <-> ``second``) at the n-th site."""

    def mutate(tree: ast.AST, n: int) -> str | None:
        sites = (node for node in ast.walk(tree)
                 if isinstance(node, node_types) and isinstance(node.op, first | second))
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
        if k == n:
            node.value = ast.UnaryOp(op=ast.Not(), operand=node.value)
            return f"negate_return: return x -> return not x (line {node.lineno})"
    return None


MUTATIONS: tuple[Callable[[ast.AST, int], str | None], ...] = (
    _compare_flip, _int_plus_one, _add_sub_swap, _and_or_swap, _negate_return,
)


def mutants(code: str) -> Iterator[tuple[str, str]]:
    """(mutated source, description) for every site of every kind, in the fixed order."""
    original = ast.unparse(ast.parse(code))
    seen = {original}
    for mutate in MUTATIONS:
        n = 0
        while True:
            tree = ast.parse(code)
            what = mutate(tree, n)
            if what is None:
                break
            n += 1
            source = ast.unparse(ast.fix_missing_locations(tree))
            if source not in seen:
                seen.add(source)
                yield source, what


# ---------------------------------------------------------------------------------------------
# Evaluation in the sandbox.
# ---------------------------------------------------------------------------------------------

@dataclass
class Evaluated:
    task_id: int
    code: str
    tests: str
    reference_ok: bool
    mutant: tuple[str, str, str] | None = None  # (program, mutation, stable status)


class Runner:
    def __init__(self, sandbox: DockerSandbox) -> None:
        self.sandbox = sandbox
        self.gate = asyncio.Semaphore(IN_FLIGHT)
        self.runs = 0

    async def status(self, program: str, tests: str) -> str:
        """The verdict; "slow" for a program over MAX_CPU_S, which is never kept."""
        async with self.gate:
            self.runs += 1
            result = await self.sandbox.run(program, tests, LIMITS)
            return "slow" if result.cpu_s > MAX_CPU_S else result.status

    async def stable(self, program: str, tests: str, status: str) -> bool:
        again = await asyncio.gather(*(self.status(program, tests) for _ in range(CONFIRM_RUNS)))
        return all(s == status for s in again)

    async def evaluate(self, rec: dict) -> Evaluated:
        code, tests = rec["code"], "\n".join(rec["test_list"]) + "\n"
        ev = Evaluated(task_id=rec["task_id"], code=code, tests=tests, reference_ok=False)
        if await self.status(code, tests) != "passed" or not await self.stable(code, tests, "passed"):
            return ev
        ev.reference_ok = True
        first_error: tuple[str, str] | None = None
        chosen: tuple[str, str, str] | None = None
        for k, (program, what) in enumerate(mutants(code)):
            if k >= MAX_CANDIDATES:
                break
            status = await self.status(program, tests)
            if status == "failed":
                chosen = (program, what, status)
                break
            if status == "error" and first_error is None:
                first_error = (program, what)
        if chosen is None and first_error is not None:
            chosen = (*first_error, "error")
        if chosen is not None and await self.stable(chosen[0], tests, chosen[2]):
            ev.mutant = chosen
        return ev


async def build(source: Path) -> list[dict]:
    records = json.loads(source.read_text())
    eligible = sorted((r for r in records if len(r["test_list"]) == 3 and not r["test_imports"]),
                      key=lambda r: r["task_id"])
    out: list[dict] = []
    skipped: Counter[str] = Counter()
    async with DockerSandbox(SandboxConfig()) as sandbox:
        runner = Runner(sandbox)
        chunk = 32
        for start in range(0, len(eligible), chunk):
            batch = await asyncio.gather(*(runner.evaluate(r) for r in eligible[start:start + chunk]))
            for ev in batch:
                if len(out) == N_PROGRAMS:
                    break
                if not ev.reference_ok:
                    skipped["reference does not pass (stably)"] += 1
                    continue
                planted = len(out) % 2 == 1
                if planted and ev.mutant is None:
                    skipped["no mutation fails (stably)"] += 1
                    continue
                program, mutation, expected = ev.mutant if planted else (ev.code, None, "passed")
                out.append({"task_id": ev.task_id, "program": program, "tests": ev.tests,
                            "planted": planted, "mutation": mutation, "expected": expected})
            print(f"  {min(start + chunk, len(eligible))}/{len(eligible)} problems looked at, "
                  f"{len(out)} kept, {runner.runs} sandbox runs", flush=True)
            if len(out) == N_PROGRAMS:
                break
    for why, n in skipped.items():
        print(f"  skipped {n}: {why}")
    if len(out) < N_PROGRAMS:
        raise SystemExit(f"only {len(out)} programs qualified; wanted {N_PROGRAMS}")
    return out


NOTICE = """\
# Notice: MBPP

`sandbox_programs.jsonl` in this folder derives from the sanitized split of MBPP (Mostly Basic
Python Problems), `sanitized-mbpp.json`, published by Google Research at
https://github.com/google-research/google-research/tree/master/mbpp

MBPP is licensed under the Creative Commons Attribution 4.0 International License (CC BY 4.0),
https://creativecommons.org/licenses/by/4.0/

Credit: Jacob Austin, Augustus Odena, Maxwell Nye, Maarten Bosma, Henryk Michalewski, David Dohan,
Ellen Jiang, Carrie Cai, Michael Terry, Quoc Le and Charles Sutton. "Program Synthesis with Large
Language Models", 2021, arXiv:2108.07732.

Changes made: 200 problems were selected (three asserts, no test imports, reference solution passes
in the codestill sandbox); each program is the problem's reference solution and its tests are the
problem's three `assert` lines. Half of the reference solutions (100, those with `"planted": true`)
were deliberately mutated by `bench/make_sandbox_programs.py` (an AST mutation, described in each
record's `mutation` field) to be wrong, so that they fail their tests or raise an error. The
`expected` field records the verdict of the codestill sandbox, not part of MBPP.
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE, help="path to sanitized-mbpp.json")
    args = parser.parse_args()
    out = asyncio.run(build(args.source))
    OUT_DATA.parent.mkdir(parents=True, exist_ok=True)
    with OUT_DATA.open("w") as f:
        for rec in out:
            f.write(json.dumps(rec) + "\n")
    OUT_NOTICE.write_text(NOTICE)
    planted = [r for r in out if r["planted"]]
    print(f"wrote {len(out)} programs to {OUT_DATA}: {len(out) - len(planted)} correct, "
          f"{len(planted)} planted")
    print("  planted by status:", dict(Counter(r["expected"] for r in planted)))
    print("  planted by mutation:", dict(Counter(r["mutation"].split(":")[0] for r in planted)))


if __name__ == "__main__":
    main()
