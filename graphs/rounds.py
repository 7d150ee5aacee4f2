"""Evolution rounds over a set of instructions, streamed to disk and resumable.

Round 1 evolves the originals, round r the survivors of round r-1 (WizardCoder). Every survivor is
appended to the output as it comes, after the originals, so the output holds every round with its
lineage; every eliminated evolution goes to a second file with its reason. Re-running skips what
either file already holds (a line torn by a crash is simply done again), so an interrupted run goes
on where it stopped.

After each round an optional dev check (``DevCheck``: a held-out measure, e.g. a user command that
trains and evaluates on the data so far, or the solve graph's accept rate on a sample of the round)
gives a number; when it drops below the previous round's, the rounds stop, as WizardCoder v2 stops
evolving when its dev set score falls. Each round's number is kept in the rounds file.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from codestill.records import JsonlAppender, read_appended
from codestill.schemas import SCHEMA_VERSION, Origin, Task, Usage
from graphs._deps import InstructDeps
from graphs.evol import EvolState, build_graph, evolved_task

DevCheck = Callable[[int, Sequence[Task]], Awaitable[float]]


class Eliminated(BaseModel):
    """One failed evolution: of which parent, in which round, with which heuristic, and why."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: int = SCHEMA_VERSION
    parent_id: str
    round: int
    heuristic: str
    reason: str
    text: str = ""
    why: str = ""


class RoundRecord(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: int = SCHEMA_VERSION
    round: int
    survivors: int
    metric: float | None = None
    stopped: bool = False


@dataclass
class EvolPaths:
    tasks: Path

    @property
    def eliminated(self) -> Path:
        return self.tasks.with_name(self.tasks.stem + ".eliminated.jsonl")

    @property
    def rounds(self) -> Path:
        return self.tasks.with_name(self.tasks.stem + ".rounds.jsonl")

    @property
    def stats(self) -> Path:
        return self.tasks.with_name(self.tasks.stem + ".stats.json")


@dataclass
class EvolStats:
    originals: int = 0
    per_round: dict[int, Counter[str]] = field(default_factory=dict)  # round -> {"survived": n, reason: n}
    metrics: dict[int, float] = field(default_factory=dict)
    stopped_after: int | None = None
    usage: Usage = field(default_factory=Usage)

    def count(self, round_: int, outcome: str) -> None:
        self.per_round.setdefault(round_, Counter())[outcome] += 1

    def eliminations(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for c in self.per_round.values():
            total.update({k: v for k, v in c.items() if k != "survived"})
        return total

    def to_json(self) -> dict[str, Any]:
        reasons = self.eliminations()
        tried = sum(sum(c.values()) for c in self.per_round.values())
        return {"originals": self.originals, "evolutions_tried": tried,
                "survived": sum(c["survived"] for c in self.per_round.values()),
                "eliminated": dict(reasons),
                "eliminated_share": {k: round(v / tried, 4) for k, v in reasons.items()} if tried else {},
                "rounds": {str(r): dict(c) for r, c in sorted(self.per_round.items())},
                "dev_metric": {str(r): m for r, m in sorted(self.metrics.items())},
                "stopped_after_round": self.stopped_after, "usage": self.usage.model_dump()}


def _round_of(task: Task) -> int:
    return task.origin.round if task.origin is not None else 0


def _as_original(task: Task) -> Task:
    return task if task.origin is not None else task.model_copy(update={"origin": Origin(seed_id=task.id)})


async def run_rounds(originals: Sequence[Task], deps: InstructDeps, paths: EvolPaths, *, rounds: int,
                     dev_check: DevCheck | None = None, on_round: Callable[[int, int], None] | None = None,
                     on_result: Callable[[Task | Eliminated], None] | None = None) -> EvolStats:
    """Evolve ``originals`` for up to ``rounds`` rounds into ``paths``; ``on_round(round, todo)`` and
    ``on_result`` report progress. Returns the stats of everything in the files (earlier runs too)."""
    have = {t.id: t for t in read_appended(paths.tasks, Task)}
    gone = read_appended(paths.eliminated, Eliminated)
    records = {r.round: r for r in read_appended(paths.rounds, RoundRecord)}
    stats = EvolStats(originals=len(originals))
    graph = build_graph()
    with JsonlAppender(paths.tasks) as out, JsonlAppender(paths.eliminated) as bin_, \
            JsonlAppender(paths.rounds) as log:
        parents = []
        for t in originals:
            if t.id not in have:
                have[t.id] = _as_original(t)
                out.write(have[t.id])
            parents.append(have[t.id])
        by_parent: dict[str, Task] = {t.origin.parent_id: t for t in have.values()
                                      if t.origin is not None and t.origin.parent_id}
        failed = {(e.parent_id, e.round): e for e in gone}
        sem = asyncio.Semaphore(deps.evol.concurrency)
        for r in range(1, rounds + 1):
            todo = [p for p in parents if p.id not in by_parent and (p.id, _round_of(p) + 1) not in failed]
            if on_round is not None:
                on_round(r, len(todo))

            async def one(parent: Task) -> None:
                async with sem:
                    state: EvolState = await graph.ainvoke(
                        {"task": parent, "round": _round_of(parent) + 1}, context=deps,
                        config={"run_name": "evol", "metadata": {"task_id": parent.id}})
                stats.usage += state.get("usage", Usage())
                result: Task | Eliminated
                if state.get("reason"):
                    result = Eliminated(parent_id=parent.id, round=state["round"], heuristic=state["heuristic"],
                                        reason=state["reason"], text=state.get("text", ""), why=state.get("why", ""))
                    failed[(parent.id, result.round)] = result
                    bin_.write(result)
                else:
                    result = evolved_task(parent, state)
                    by_parent[parent.id] = result
                    out.write(result)
                if on_result is not None:
                    on_result(result)

            await asyncio.gather(*(one(p) for p in todo))
            children = [by_parent[p.id] for p in parents if p.id in by_parent]
            for p in parents:
                if p.id in by_parent:
                    stats.count(r, "survived")
                elif (e := failed.get((p.id, _round_of(p) + 1))) is not None:
                    stats.count(r, e.reason)
            record = records.get(r)
            if record is None:
                metric = await dev_check(r, children) if dev_check is not None and children else None
                previous = [m for k, m in stats.metrics.items() if k < r]
                stopped = metric is not None and bool(previous) and metric < previous[-1]
                record = RoundRecord(round=r, survivors=len(children), metric=metric, stopped=stopped)
                log.write(record)
            if record.metric is not None:
                stats.metrics[r] = record.metric
            parents = children
            if record.stopped:
                stats.stopped_after = r
                break
    return stats
