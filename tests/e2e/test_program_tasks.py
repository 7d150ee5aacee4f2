"""SelfCodeAlign's "program" category end to end: `codestill instruct` asked for program instructions only
(``--set selfalign.categories.program=1.0``) over four seeds the simulator knows, then `codestill generate`
solving them against the imperfect teacher (``--teacher realistic``: wrong expected outputs, too few or
constant cases, planted bugs, unreadable and over-confident critiques), the Docker sandbox and an embedded
Chroma memory.

Each accepted program is judged afterwards on inputs no agent saw, with outputs worked out here by
running the seed itself: none may be wrong. Its suite must be stdin/stdout cases that it passes, and its
code a script that reads stdin and prints.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path

from codestill.config import SandboxConfig
from codestill.records import read_jsonl, write_jsonl
from codestill.schemas import IOCase, Seed, SFTRecord, Task, TestSuite, Trajectory
from codestill.sim import SimConfig, serve_subprocess
from tests.e2e.test_generate_sim import CODESTILL
from tools.sandbox import DockerSandbox

DIGIT_SUM = '''def digit_sum(n: int) -> int:
    """The sum of the decimal digits of n, ignoring its sign.

    >>> digit_sum(1234)
    10
    >>> digit_sum(-56)
    11
    >>> digit_sum(0)
    0
    """
    n = abs(n)
    total = 0
    while n > 0:
        total += n % 10
        n //= 10
    return total
'''
RUNNING_MAX = '''def running_max(nums: list[int]) -> list[int]:
    """The largest value seen so far at each position of nums.

    >>> running_max([3, 1, 4, 1, 5])
    [3, 3, 4, 4, 5]
    >>> running_max([-2, -5, -1])
    [-2, -2, -1]
    >>> running_max([])
    []
    """
    out = []
    for x in nums:
        out.append(x if not out or x > out[-1] else out[-1])
    return out
'''
COUNT_VOWELS = '''def count_vowels(text: str) -> int:
    """How many vowels (a, e, i, o, u, in either case) text holds.

    >>> count_vowels("Hello World")
    3
    >>> count_vowels("rhythm")
    0
    >>> count_vowels("AEIOU aeiou")
    10
    """
    return sum(1 for ch in text.lower() if ch in "aeiou")
'''
IS_LEAP = '''def is_leap(year: int) -> bool:
    """Whether year is a leap year of the Gregorian calendar.

    >>> is_leap(2024)
    True
    >>> is_leap(1900)
    False
    >>> is_leap(2000)
    True
    >>> is_leap(2023)
    False
    """
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
'''
SOURCES = {"digit_sum": DIGIT_SUM, "running_max": RUNNING_MAX, "count_vowels": COUNT_VOWELS, "is_leap": IS_LEAP}
# Inputs no agent saw: the judge's, one argument per line, as the instructions say.
UNSEEN = {"digit_sum": [(987654321,), (-1000,), (7,)], "running_max": [([5, 4, 3],), ([1, 2, 2, 9, 0],), ([0],)],
          "count_vowels": [("Programming in Python",), ("",), ("xyz AEI",)],
          "is_leap": [(1600,), (2100,), (1996,), (1999,)]}


def _seeds() -> list[Seed]:
    out = []
    for name, code in SOURCES.items():
        header = code.splitlines()[0]
        doc = code.split('"""')[1]
        out.append(Seed(id=f"e2e:{name}", name=name, signature=header.removesuffix(":"), docstring=doc.strip(),
                        code=code))
    return out


def _truth(name: str) -> TestSuite:
    space: dict = {}
    exec(SOURCES[name], space)  # our own seed, trusted: the reference the judge compares with
    cases = [IOCase(input="".join(f"{a!r}\n" for a in args), output=f"{space[name](*args)!r}\n")
             for args in UNSEEN[name]]
    return TestSuite(kind="io", cases=tuple(cases))


def _cli(*args: str) -> dict:
    done = subprocess.run([CODESTILL, *args, "--json"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def test_program_instructions_are_solved_with_stdin_stdout_cases(tmp_path: Path) -> None:
    seeds, instructions, run = tmp_path / "seeds.jsonl", tmp_path / "instructions.jsonl", tmp_path / "run"
    write_jsonl(seeds, _seeds())
    sim = SimConfig(seed=3, teacher="realistic", knowledge=(str(seeds),), cache_dir=str(tmp_path / "sim"))
    with serve_subprocess(sim) as url:
        model = f"openai:codestill-sim@{url}"
        made = _cli("instruct", "--seeds", str(seeds), "--out", str(instructions), "--model", model,
                    "--set", "selfalign.categories.program=1.0")
        assert made["instructions"] == len(SOURCES), made
        tasks = list(read_jsonl(instructions, Task))
        assert all(t.origin is not None and t.origin.category == "program" for t in tasks)
        assert all("from standard input" in t.instruction for t in tasks)
        _cli("generate", "--seeds", str(instructions), "--pipeline", "solve", "--out", str(run), "--model", model,
             "--concurrency", "4", "--set", f"memory.path={tmp_path / 'memory'}", "--set", "sandbox.pool_size=2")
    trajectories = [Trajectory.model_validate_json(line) for line in (run / "trajectories.jsonl").read_text().splitlines()]
    assert len(trajectories) == len(SOURCES)
    accepted = {t.task.origin.seed_id.removeprefix("e2e:"): t for t in trajectories
                if t.verdict == "accepted" and t.task.origin is not None and t.task.origin.seed_id}
    print(f"\naccepted: {sorted(accepted)}; others: {[(t.task.id, t.reason[:120]) for t in trajectories if t.verdict != 'accepted']}")
    assert len(accepted) >= 3, [t.reason for t in trajectories]
    for name, t in accepted.items():
        final = next(a for a in reversed(t.attempts) if a.critique is not None and a.critique.verdict == "accept")
        assert final.tests is not None and final.tests.kind == "io" and len(final.tests.cases) >= 3, name
        assert final.result is not None and final.result.passed and final.code == t.final_code, name
        code = t.final_code or ""
        assert ("sys.stdin" in code or "input(" in code) and "print(" in code, name
    # every attempt of a program task ran io cases, and the teacher's errors met the gates
    ran = [a for t in trajectories for a in t.attempts if a.tests is not None]
    assert ran and all(a.tests is not None and a.tests.kind == "io" for a in ran)
    sent_back = [a for t in trajectories for a in t.attempts if a.critique is not None and a.critique.verdict != "accept"]
    assert sent_back, "the realistic teacher erred nowhere: the gates were not exercised"

    async def judged() -> dict[str, bool]:
        async with DockerSandbox(SandboxConfig(pool_size=2)) as sandbox:
            results = await asyncio.gather(*(sandbox.run(t.final_code or "", _truth(n)) for n, t in accepted.items()))
        return {n: r.passed for n, r in zip(accepted, results, strict=True)}

    wrong = [n for n, ok in asyncio.run(judged()).items() if not ok]
    assert not wrong, {n: accepted[n].final_code for n in wrong}
    # the programs' functions entered the memory, their stdin-reading main (one task's I/O glue) did not
    stored = _cli("memory", "ls", "--path", str(tmp_path / "memory"))
    names = {m["name"] for m in (stored if isinstance(stored, list) else stored["modules"])}
    assert set(accepted) <= names and "main" not in names, names
    _exported_as_programs(run, tmp_path, set(t.id for t in accepted.values()))


def _exported_as_programs(run: Path, tmp_path: Path, accepted: set[str]) -> None:
    """The export keeps the category and shows the program with its stdin/stdout cases."""
    out = tmp_path / "export"
    _cli("export", str(run), "--out", str(out), "--no-decontam", "--response-style", "explained+tests")
    records = list(read_jsonl(out / "sft.jsonl", SFTRecord))
    finals = [r for r in records if r.tags[0] == "code:final"]
    assert {r.provenance.trajectory_id for r in finals} == accepted
    for r in finals:
        assert r.provenance.category == "program" and "category:program" in r.tags
        assert r.provenance.evidence is not None and r.provenance.evidence.test_kind == "io"
        assert r.provenance.evidence.tests_passed >= 3
        answer = r.messages[-1].content
        assert "print(" in answer and "\n\nTests:\n\nInput:\n```\n" in answer and "\nOutput:\n```\n" in answer
