"""A batch run directory for the export tests: real ``Trajectory`` records covering every case the export
treats differently, committed through the ledger by an interrupted and resumed batch.

    input trajectory   what                                                       export
    0     a1           accepted, evol, 2 forward plans (one failed), backward,    kept: code, (modular), plan
                       2 modules, visible asserts                                 forward, plan backward
    1     r1           rejected                                                   not_accepted
    2     a2           accepted, selfalign, 1 module, no backward plan            kept: code, plan forward
    -     (torn by a dying session, cut off by the resumed ledger)                 never read
    3     a1-again     the instruction of a1 in other case and spacing            exact_duplicate of a1
    4     f1           failed                                                     not_accepted
    5     m1           MBPP problem 2 with its reference solution                 contaminated (mbpp/2)
    6     a3           a2's instruction with one word changed                     near_duplicate of a2
    -     (torn tail past the last commit, no newline)                             left out (120 bytes)
"""

from __future__ import annotations

from pathlib import Path

from codestill.data import load_mbpp
from codestill.records import dump_record
from codestill.run._ledger import Ledger, read_entries
from codestill.schemas import (
    Attempt,
    Critique,
    ExecResult,
    Module,
    ModuleSpec,
    Plan,
    Task,
    TestResult,
    TestSuite,
    Trajectory,
)

# The model label carries URL credentials on purpose: they must not reach the export.
MODEL = "openai:codestill-sim@http://user:s3cret@127.0.0.1:8000/v1"
PUBLIC_MODEL = "openai:codestill-sim@http://127.0.0.1:8000/v1"
A = ("Write a function running_max(xs) that returns a list whose i-th element is the largest of the first "
     "i+1 numbers of xs; an empty list gives an empty list.")
B = ("Write a function that takes a list of (name, score) pairs and returns a dictionary mapping each name to the "
     "average of its scores, rounded to two decimal places, ignoring pairs whose score is None and keeping the "
     "names in the order they first appear.")
HELPER = "def bigger(a, b):\n    return a if a >= b else b\n"
MAIN = ("def running_max(xs):\n    out = []\n    for x in xs:\n        out.append(bigger(out[-1], x) if out else x)\n"
        "    return out\n")
A_CODE = HELPER + "\n\n" + MAIN
B_CODE = ("def averages(pairs):\n    sums = {}\n    for name, score in pairs:\n        if score is not None:\n"
          "            sums.setdefault(name, []).append(score)\n"
          "    return {n: round(sum(s) / len(s), 2) for n, s in sums.items()}\n")
PASSED = ExecResult(run_id="ok", status="passed", tests=tuple(TestResult(name=f"test {i}", outcome="passed")
                                                             for i in range(1, 6)))
A_EXPLANATION = ("One pass keeps the running maximum: each output is the bigger of the number and the last output, "
                 "and an empty list gives an empty result.")
TEACHERS = {"planner": MODEL, "coder": MODEL, "tester": MODEL, "critic": MODEL}
FAILED = ExecResult(run_id="bad", status="failed")


def _accepted(tid: str, instruction: str, code: str, source: str, **extra: object) -> Trajectory:
    return Trajectory.model_validate({
        "id": tid, "task": Task(id=f"task-{tid}", instruction=instruction, source=source), "verdict": "accepted",
        "reason": "accepted", "final_code": code, "model": MODEL, **extra})


def trajectories() -> list[Trajectory]:
    mbpp = load_mbpp()[0]  # mbpp/2: "Write a function to find the shared elements from the given two lists."
    a1 = Trajectory(
        id="a1", verdict="accepted", reason="accepted", final_code=A_CODE, model=MODEL,
        task=Task(id="evol/7", instruction=A, source="evol", lineage=("seed:3",),
                  tests=TestSuite(code="assert running_max([1, 3, 2]) == [1, 3, 3]\nassert running_max([]) == []\n")),
        plans=(Plan(steps=("Sort xs", "Return it")),
               Plan(steps=("1. Start an empty result", "2) For each number, append the bigger of it and the last "
                           "result", "- Return the result"), rationale="one pass"),
               Plan(steps=("Keep the largest number seen so far", "Append it for every number"), kind="backward")),
        modules=(Module(spec=ModuleSpec(name="bigger", signature="def bigger(a, b)",
                                        description="The larger of two numbers."), code=HELPER),
                 Module(spec=ModuleSpec(name="running_max", signature="def running_max(xs)"), code=MAIN)),
        attempts=(Attempt(plan_index=0, code="def running_max(xs):\n    return sorted(xs)\n", result=FAILED,
                          critique=Critique(verdict="replan")),
                  Attempt(plan_index=1, code=A_CODE, result=PASSED, critique=Critique(verdict="accept"),
                          explanation=A_EXPLANATION, mutation_score=0.9,
                          tests=TestSuite(code="assert running_max([2, 1]) == [2, 2]\n"))),
        models=TEACHERS, codestill_version="0.test")
    a2 = _accepted("a2", B, B_CODE, "selfalign", plans=(Plan(steps=("Group the scores by name", "Average them")),),
                   modules=(Module(spec=ModuleSpec(name="averages", signature="def averages(pairs)"), code=B_CODE),),
                   attempts=(Attempt(plan_index=0, code=B_CODE, result=PASSED),))
    return [
        a1,
        Trajectory(id="r1", task=Task(id="task-r1", instruction="Write a function that halts any program."),
                   verdict="rejected", reason="unsolvable: the halting problem", model=MODEL,
                   attempts=(Attempt(code="def halts(program):\n    return True\n", result=FAILED,
                                     explanation="Every program halts eventually, so the answer is always True."),)),
        a2,
        _accepted("a1-again", "  " + A.upper().replace(" ", "\n  "), A_CODE, "evol"),
        Trajectory(id="f1", task=Task(id="task-f1", instruction="Write a function that sums xs."),
                   verdict="failed", reason="model_failure: no reply", model=MODEL),
        _accepted("m1", mbpp.instruction, mbpp.reference, "mbpp"),
        _accepted("a3", B.replace("first appear.", "first occur."), B_CODE, "selfalign"),
    ]


def write_run(run_dir: Path) -> Path:
    """``run_dir`` as a batch leaves it: ``config.json``, and the trajectories committed one input at a time
    through the ledger by two sessions. The first died while writing (a torn line the resumed ledger cut
    off), the second is dying now (a torn tail past its last commit, left out by every reader)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.json").write_text('{"run_id": "demo-run", "model": "openai:codestill-sim"}\n')
    made = trajectories()
    torn = dump_record(made[1])
    with Ledger(run_dir) as ledger:
        for i, t in enumerate(made[:3]):
            ledger.commit(f"input-{i}", t.verdict, [t], {})
    with (run_dir / "trajectories.jsonl").open("a") as f:
        f.write(torn[:57])
    with Ledger(run_dir) as ledger:  # resumed: the torn line is cut off
        for i, t in enumerate(made[3:], 3):
            ledger.commit(f"input-{i}", t.verdict, [t], {})
    with (run_dir / "trajectories.jsonl").open("a") as f:
        f.write(torn[:120])
    return run_dir


def damage(run_dir: Path, index: int, text: str) -> None:
    """Overwrite the ``index``-th committed record in place with ``text`` (padded with spaces to its length),
    as a damaged disk or a hand edit would: the ledger's ranges still hold, their bytes do not."""
    entry = read_entries(run_dir)[index]
    data = text.encode().ljust(entry.end - entry.start - 1) + b"\n"
    with (run_dir / "trajectories.jsonl").open("r+b") as f:
        f.seek(entry.start)
        f.write(data)


def commit(run_dir: Path, made: list[Trajectory]) -> Path:
    """``run_dir`` holding just ``made``, each committed as one input."""
    with Ledger(run_dir) as ledger:
        for i, t in enumerate(made):
            ledger.commit(f"input-{i}", t.verdict, [t], {})
    return run_dir
