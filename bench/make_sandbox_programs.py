"""Build bench/data/sandbox_programs.jsonl: 200 MBPP programs with known sandbox verdicts.

Run once; its output is committed and read by ``bench/sandbox_throughput.py``::

    .venv/bin/python bench/make_sandbox_programs.py [--source PATH/TO/sanitized-mbpp.json]

Source: MBPP's ``sanitized-mbpp.json`` (Austin et al. 2021, "Program Synthesis with Large
Language Models"), CC BY 4.0; see bench/data/NOTICE-MBPP.md.

Selection, deterministic: the problems, sorted by task_id, that have exactly three asserts and no
test imports, and whose reference solution passes its asserts in the sandbox using at most
``MAX_CPU_S`` of CPU time (the bench measures the sandbox, not one slow program). Positions 0, 2, 4...
of the output keep the reference solution; positions 1, 3, 5... get a planted bug: the first AST
mutation (``tools.mutants.mutants``: kinds in a fixed order, sites in ``ast.walk`` order) whose
sandbox verdict is "failed", or failing that the first whose verdict is "error" (within the same
CPU budget). A problem with
no such mutation is skipped for the next one. Every kept program has been run three times in the
sandbox with the same verdict (one run plus two confirmations); one whose verdict changes is
dropped. The verdict is recorded as ``expected``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from codestill.config import SandboxConfig
from codestill.schemas import Limits
from tools.mutants import mutants
from tools.sandbox import DockerSandbox

HERE = Path(__file__).resolve().parent
DEFAULT_SOURCE = HERE.parent / "codestill" / "data" / "sanitized-mbpp.json"  # the copy shipped with codestill
OUT_DATA = HERE / "data" / "sandbox_programs.jsonl"
OUT_NOTICE = HERE / "data" / "NOTICE-MBPP.md"

N_PROGRAMS = 200
LIMITS = Limits(cpu_s=4)
CONFIRM_RUNS = 2  # extra runs of every kept program; its verdict must not change
MAX_CANDIDATES = 40  # mutated variants tried per problem, at most
MAX_CPU_S = 0.1  # MBPP-sized: a program that needs more CPU measures itself, not the sandbox
IN_FLIGHT = 16  # runs queued on the pool at once (keeps each wait well under start_timeout_s)


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
                program, mutation, expected = (ev.code, None, "passed")
                if planted:
                    if ev.mutant is None:
                        skipped["no mutation fails (stably)"] += 1
                        continue
                    program, mutation, expected = ev.mutant
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
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
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
