"""Evolution rounds over a set of instructions, streamed to disk and resumable.

Round 1 evolves the originals, round r the survivors of round r-1 (WizardCoder). Every survivor is
appended to the output as it comes, after the originals, so the output holds every round with its
lineage; every eliminated evolution goes to a second file with its reason. Re-running skips what
either file already holds (a line torn by a crash is simply done again), so an interrupted run goes
on where it stopped.

Without a dev check the rounds have no barrier: each lineage is one run of the evol graph and moves
to its next round the moment its own call returns, so no lineage waits for the slowest call of a
round. With one (``DevCheck``: a held-out measure, e.g. a user command that trains and evaluates on
the data so far, or the solve graph's accept rate on a sample of the round), the check must see a
whole round before the next begins: every lineage evolves once, then the check gives a number, and
when it drops below the previous round's the rounds stop, as WizardCoder v2 stops evolving when its
dev set score falls. Each round's number is kept in the rounds file.
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
from graphs.evol import EvolState, Outcome, build_graph

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
    """Evolve ``originals`` for up to ``rounds`` rounds into ``paths``. ``on_round(round, todo)`` gives
    each round's number of evolutions to try (without a dev check, all rounds at the start, each an
    upper bound that every elimination in an earlier round lowers by one); ``on_result`` reports each
    decided evolution. Returns the stats of everything in the files (earlier runs too)."""
    have = {t.id: t for t in read_appended(paths.tasks, Task)}
    gone = read_appended(paths.eliminated, Eliminated)
    records = {r.round: r for r in read_appended(paths.rounds, RoundRecord)}
    stopped = min((r.round for r in records.values() if r.stopped), default=None)
    stats = EvolStats(originals=len(originals))
    graph = build_graph()
    with JsonlAppender(paths.tasks) as out, JsonlAppender(paths.eliminated) as bin_, \
            JsonlAppender(paths.rounds) as log:
        starts = []
        for t in originals:
            if t.id not in have:
                have[t.id] = _as_original(t)
                out.write(have[t.id])
            starts.append(have[t.id])
        by_parent: dict[str, Task] = {t.origin.parent_id: t for t in have.values()
                                      if t.origin is not None and t.origin.parent_id}
        failed = {(e.parent_id, e.round): e for e in gone}
        limit = min(rounds, stopped or rounds)

        def evolutions(start: Task) -> list[Task]:
            """The lineage's evolutions so far, in round order."""
            made = [start]
            while made[-1].id in by_parent:
                made.append(by_parent[made[-1].id])
            return made[1:]

        def open_(start: Task) -> bool:
            """May the lineage evolve again: under the limit, and its last evolution not eliminated?"""
            made = evolutions(start)
            last = made[-1] if made else start
            return len(made) < limit and (last.id, _round_of(last) + 1) not in failed

        def record(outcome: Outcome) -> None:
            stats.usage += outcome.usage
            result: Task | Eliminated
            if outcome.child is None:
                result = Eliminated(parent_id=outcome.parent.id, round=outcome.round, heuristic=outcome.heuristic,
                                    reason=outcome.reason or "", text=outcome.text, why=outcome.why)
                failed[(outcome.parent.id, outcome.round)] = result
                bin_.write(result)
            else:
                result = by_parent[outcome.parent.id] = outcome.child
                out.write(result)
            if on_result is not None:
                on_result(result)

        sem = asyncio.Semaphore(deps.evol_concurrency)

        async def lineage(start: Task, steps: int) -> None:
            """``steps`` more evolutions of the lineage from ``start`` (fewer if one is eliminated)."""
            made = evolutions(start)
            parent = made[-1] if made else start
            state: EvolState = {"task": parent, "round": _round_of(parent) + 1,
                                "last_round": _round_of(parent) + min(steps, limit - len(made))}
            async with sem:
                async for outcome in graph.astream(state, context=deps, stream_mode="custom", config={
                        "run_name": "evol", "metadata": {"task_id": start.id}}):
                    record(outcome)

        if dev_check is None:
            todo = [s for s in starts if open_(s)]
            if on_round is not None:
                for r in range(1, limit + 1):
                    on_round(r, sum(len(evolutions(s)) < r for s in todo))
            await asyncio.gather(*(lineage(s, limit) for s in todo))
        for r in range(1, limit + 1):
            if dev_check is not None:
                todo = [s for s in starts if len(evolutions(s)) == r - 1 and open_(s)]
                if on_round is not None:
                    on_round(r, len(todo))
                await asyncio.gather(*(lineage(s, 1) for s in todo))
            children = []
            for s in starts:
                made = evolutions(s)
                last = made[-1] if made else s
                if len(made) >= r:
                    stats.count(r, "survived")
                    children.append(made[r - 1])
                elif len(made) == r - 1 and (e := failed.get((last.id, _round_of(last) + 1))) is not None:
                    stats.count(r, e.reason)
            rec = records.get(r)
            if rec is None:
                metric = await dev_check(r, children) if dev_check is not None and children else None
                previous = [m for k, m in stats.metrics.items() if k < r]
                rec = RoundRecord(round=r, survivors=len(children), metric=metric,
                                  stopped=metric is not None and bool(previous) and metric < previous[-1])
                log.write(rec)
            if rec.metric is not None:
                stats.metrics[r] = rec.metric
            if rec.stopped:
                stats.stopped_after = r
                break
    return stats

