"""The evol rounds and the selfalign graph with scripted models: lineage, eliminations, resume, dev check."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatResult

from codestill.config import EvolConfig, SelfAlignConfig
from codestill.records import read_jsonl
from codestill.run._rounds import Eliminated, EvolPaths, RoundRecord, run_rounds
from codestill.schemas import Seed, Task
from graphs import InstructDeps
from graphs.selfalign import NoInstruction, draw, failed_path, run_instruct
from tests.graphs.conftest import RoleModel

_GIVEN = re.compile(r"#Given Prompt#:\n(.*?)\n\n#Rewritten Prompt#", re.S)


def _evolver(fail: dict[str, str] | None = None, lost: tuple[str, ...] = ()) -> RoleModel:
    """Appends a sentence; for a parent containing a key of ``fail``, answers its value instead.
    The judge calls a text lost when it contains one of ``lost``."""

    def answer(role: str, text: str) -> Any:
        if "#Task#:" in text:
            return {"solvable": not any(w in text for w in lost), "reason": "scripted"}
        parent = _GIVEN.search(text).group(1)  # type: ignore[union-attr]
        for key, reply in (fail or {}).items():
            if key in parent:
                return {"instruction": reply}
        return {"instruction": parent + " Also handle an empty input and return None for it."}

    return RoleModel(answer=answer)


def _tasks(n: int) -> list[Task]:
    return [Task(id=f"t{i}", instruction=f"Write a function f{i}(x) that returns x times {i}.") for i in range(n)]


def _deps(model: RoleModel, **evol: Any) -> InstructDeps:
    return InstructDeps(model=model, evol=EvolConfig(**{"concurrency": 4, **evol}))


def test_rounds_keep_originals_and_every_round_with_lineage(tmp_path: Path) -> None:
    paths = EvolPaths(tmp_path / "out.jsonl")
    stats = asyncio.run(run_rounds(_tasks(3), _deps(_evolver()), paths, rounds=3))
    tasks = {t.id: t for t in read_jsonl(paths.tasks, Task)}
    assert len(tasks) == 3 * 4
    last = tasks["t1#r3"]
    assert last.source == "evol" and last.lineage == ("t1", "t1#r1", "t1#r2")
    assert last.origin is not None and (last.origin.seed_id, last.origin.parent_id, last.origin.round) == \
        ("t1", "t1#r2", 3)
    assert last.origin.heuristic is not None
    assert last.instruction.startswith(tasks["t1#r2"].instruction)
    assert tasks["t0"].origin is not None and tasks["t0"].origin.round == 0
    assert stats.to_json()["survived"] == 9 and stats.eliminations() == Counter()


def test_failed_evolutions_are_eliminated_with_their_reason_and_not_evolved_again(tmp_path: Path) -> None:
    tasks = _tasks(5)
    fail = {"f1(": tasks[1].instruction, "f2(": "#Rewritten Prompt#: " + tasks[2].instruction + " More words here.",
            "f3(": "I'm sorry, I can't do that.", "f4(": "Discuss the philosophy of multiplication in a short essay."}
    paths = EvolPaths(tmp_path / "out.jsonl")
    stats = asyncio.run(run_rounds(tasks, _deps(_evolver(fail, lost=("philosophy",))), paths, rounds=2))
    gone = {e.parent_id: e.reason for e in read_jsonl(paths.eliminated, Eliminated)}
    assert gone == {"t1": "unchanged", "t2": "copied_prompt", "t3": "refusal", "t4": "lost_task"}
    assert stats.per_round[1]["survived"] == 1 and stats.per_round[2] == Counter(survived=1)
    assert {t.id for t in read_jsonl(paths.tasks, Task)} == {"t0", "t1", "t2", "t3", "t4", "t0#r1", "t0#r2"}
    # 6 evolutions tried (5 in round 1, 1 in round 2), one of each reason
    assert stats.to_json()["eliminated_share"] == dict.fromkeys(
        ("unchanged", "copied_prompt", "refusal", "lost_task"), 0.1667)


def test_without_the_judge_a_lost_task_survives(tmp_path: Path) -> None:
    fail = {"f0(": "Discuss the philosophy of multiplication in a short essay."}
    model = _evolver(fail, lost=("philosophy",))
    asyncio.run(run_rounds(_tasks(1), _deps(model, judge=False), EvolPaths(tmp_path / "o.jsonl"), rounds=1))
    assert model.calls("evolver") == 1  # no judge call
    assert [t.id for t in read_jsonl(tmp_path / "o.jsonl", Task)] == ["t0", "t0#r1"]


def test_a_rerun_skips_what_is_done_and_a_torn_line_is_done_again(tmp_path: Path) -> None:
    paths = EvolPaths(tmp_path / "out.jsonl")
    asyncio.run(run_rounds(_tasks(4), _deps(_evolver()), paths, rounds=2))
    lines = paths.tasks.read_text().splitlines(keepends=True)
    paths.tasks.write_text("".join(lines[:-1]) + lines[-1][:40])  # a crash mid-write of the last line
    again = _evolver()
    asyncio.run(run_rounds(_tasks(4), _deps(again), paths, rounds=2))
    assert again.calls("evolver") == 2  # the torn evolution: evolve + judge, nothing else
    ids = [t.id for t in (Task.model_validate_json(x) for x in paths.tasks.read_text().splitlines()
                          if x.startswith("{") and x.endswith("}"))]
    assert sorted(ids) == sorted(set(ids)) and len(ids) == 12


class _Held(RoleModel):
    """Holds its answer to ``held`` (a parent instruction) until ``release`` is set, at most 5 s."""

    held: str = ""
    release: Any = None

    async def _agenerate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None,
                         **kwargs: Any) -> ChatResult:
        given = _GIVEN.search("\n".join(str(m.content) for m in messages))
        if given is not None and given.group(1) == self.held:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.release.wait(), 5)
        return self._generate(messages, stop, run_manager, **kwargs)


def test_without_a_dev_check_a_lineage_does_not_wait_for_another_lineages_slow_call(tmp_path: Path) -> None:
    tasks, order = _tasks(2), []

    async def main() -> None:
        release = asyncio.Event()
        model = _Held(answer=_evolver().answer, held=tasks[0].instruction, release=release)

        def on_result(result: Task | Eliminated) -> None:
            order.append(result.id if isinstance(result, Task) else f"eliminated {result.parent_id}")
            if isinstance(result, Task) and result.id == "t1#r3":
                release.set()

        await run_rounds(tasks, _deps(model, judge=False), EvolPaths(tmp_path / "o.jsonl"), rounds=3,
                         on_result=on_result)

    asyncio.run(main())
    # t1 went through all three rounds while t0's first call was still out; behind a round barrier
    # t1's second round would have waited for it (and t0#r1 would come first, after the 5 s hold).
    assert order.index("t1#r3") < order.index("t0#r1")
    assert sorted(order) == ["t0#r1", "t0#r2", "t0#r3", "t1#r1", "t1#r2", "t1#r3"]


def test_the_dev_check_stops_the_rounds_when_its_metric_drops(tmp_path: Path) -> None:
    scores = {1: 0.6, 2: 0.7, 3: 0.5, 4: 0.9}
    seen: list[int] = []

    async def dev(round_: int, tasks: Sequence[Task]) -> float:
        seen.append(round_)
        assert all(t.origin is not None and t.origin.round == round_ for t in tasks)
        return scores[round_]

    paths, rounds = EvolPaths(tmp_path / "out.jsonl"), []
    stats = asyncio.run(run_rounds(_tasks(2), _deps(_evolver()), paths, rounds=5, dev_check=dev,
                                   on_result=lambda t: rounds.append(t.origin.round)))  # type: ignore[union-attr]
    assert seen == [1, 2, 3] and stats.stopped_after == 3 and stats.metrics == {1: 0.6, 2: 0.7, 3: 0.5}
    assert rounds == [1, 1, 2, 2, 3, 3]  # the check sees whole rounds: a barrier between them
    assert [r.stopped for r in read_jsonl(paths.rounds, RoundRecord)] == [False, False, True]
    # A rerun neither evolves nor checks again: the stop is on record.
    model = _evolver()
    asyncio.run(run_rounds(_tasks(2), _deps(model), paths, rounds=5, dev_check=dev))
    assert seen == [1, 2, 3] and model.calls("evolver") == 0


# ---------------------------------------------------------------- selfalign


def _seeds(n: int) -> list[Seed]:
    return [Seed(id=f"s{i}", name=f"f{i}", signature=f"def f{i}(x)", code=f"def f{i}(x):\n    return x + {i}\n")
            for i in range(n)]


def _conceptor(no_concepts: str = "") -> RoleModel:
    def answer(role: str, text: str) -> Any:
        question = text.rsplit("List the programming concepts", 1)[-1].rsplit("Write one new programming task", 1)[-1]
        if "### Snippet" in question:
            return {"concepts": [] if no_concepts and no_concepts in question else ["addition", "functions"]}
        category = re.search(r"### Category\n(\w+)", question).group(1)  # type: ignore[union-attr]
        return {"instruction": f"Write a {category} that adds numbers."}

    return RoleModel(answer=answer)


def test_selfalign_writes_instructions_with_origin_and_resumes(tmp_path: Path) -> None:
    out = tmp_path / "ins.jsonl"
    model = _conceptor(no_concepts="return x + 2")
    deps = InstructDeps(model=model, selfalign=SelfAlignConfig(per_seed=2, concurrency=3))
    asyncio.run(run_instruct(_seeds(4), deps, out))
    tasks = list(read_jsonl(out, Task))
    assert sorted(t.id for t in tasks) == ["s0~i0", "s0~i1", "s1~i0", "s1~i1", "s3~i0", "s3~i1"]
    t = tasks[0]
    assert t.source == "selfalign" and t.origin is not None and t.origin.concepts == ("addition", "functions")
    assert t.instruction == f"Write a {t.origin.category} that adds numbers." and t.lineage == (t.origin.seed_id,)
    assert [(f.seed_id, f.stage) for f in read_jsonl(failed_path(out), NoInstruction)] == [("s2", "concepts")]
    calls = len(model.seen)
    asyncio.run(run_instruct(_seeds(5), deps, out))  # one new seed: only it is worked on
    assert len(model.seen) == calls + 3


def test_categories_follow_the_paper_shares_and_difficulties_are_uniform() -> None:
    cfg = SelfAlignConfig()
    draws = [draw(cfg.categories, cfg.difficulties, f"0|s{i}|0") for i in range(6000)]
    cats, diffs = Counter(c for c, _ in draws), Counter(d for _, d in draws)
    assert abs(cats["function"] / 6000 - 0.5) < 0.03 and abs(cats["class"] / 6000 - 0.25) < 0.03
    assert all(abs(diffs[d] / 6000 - 1 / 3) < 0.03 for d in cfg.difficulties)
    assert draw(cfg.categories, cfg.difficulties, "x") == draw(cfg.categories, cfg.difficulties, "x")
