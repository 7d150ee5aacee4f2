"""What a batch does with one input, per pipeline: make its instructions, then solve each.

    solve            Task  -> the solve graph                         -> 1 trajectory
    evol+solve       Task  -> evol rounds (each round evolves the      -> 1 + survivors trajectories
                              last survivor) -> solve every instruction
    selfalign+solve  Seed  -> concepts -> instructions -> solve each   -> selfalign.per_seed trajectories

Every graph run takes a slot of the shared ``gate`` (the batch's graph concurrency). What the
instruction stages did (made, eliminated and why, their tokens) goes into ``Work.detail``, which the
ledger keeps with the input and ``stats.json`` sums.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from langchain_core.callbacks import BaseCallbackHandler

from codestill.schemas import Seed, Task, Trajectory, Usage
from graphs import evol, selfalign
from graphs._deps import InstructDeps, SolveDeps

Pipeline = Literal["solve", "evol+solve", "selfalign+solve"]
PIPELINES: tuple[str, ...] = ("solve", "evol+solve", "selfalign+solve")


def input_kind(pipeline: str) -> Literal["task", "seed"]:
    return "seed" if pipeline == "selfalign+solve" else "task"


@dataclass
class Work:
    """One input's results: its trajectories and what its instruction stages did."""

    trajectories: list[Trajectory] = field(default_factory=list)
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class Graphs:
    """The compiled graphs and their dependencies, shared by every input of a batch."""

    solve: SolveDeps
    instruct: InstructDeps | None
    gate: asyncio.Semaphore
    callbacks: list[BaseCallbackHandler] = field(default_factory=list)
    compiled: dict[str, Any] = field(default_factory=dict)

    def graph(self, name: str) -> Any:
        if name not in self.compiled:
            builders: dict[str, Callable[[], Any]] = {"solve": _solve_graph, "evol": evol.build_graph,
                                                      "selfalign": selfalign.build_graph}
            self.compiled[name] = builders[name]()
        return self.compiled[name]

    def config(self, run_name: str, key: str) -> dict[str, Any]:
        return {"run_name": run_name, "callbacks": list(self.callbacks), "metadata": {"task_id": key}}


def _solve_graph() -> Any:
    from graphs.solve import build_graph

    return build_graph(reviews=False)  # no person to pause for


def thread_id(task_id: str) -> str:
    """The same input gets the same trajectory id in every attempt (a resumed run matches a clean one)."""
    return hashlib.sha256(task_id.encode()).hexdigest()[:16]


async def _solve(g: Graphs, task: Task) -> Trajectory:
    from graphs import solve

    async with g.gate:
        return await solve(task, g.solve, graph=g.graph("solve"), thread_id=thread_id(task.id),
                           callbacks=list(g.callbacks))


async def _solve_all(g: Graphs, tasks: list[Task]) -> list[Trajectory]:
    return list(await asyncio.gather(*(_solve(g, t) for t in tasks)))


async def _evolve(g: Graphs, task: Task) -> Work:
    assert g.instruct is not None
    async with g.gate:
        state = await g.graph("evol").ainvoke({"task": task, "round": 1, "last_round": g.instruct.evol.rounds},
                                              context=g.instruct, config=g.config("evol", task.id))
    tasks: list[Task] = [task, *state.get("made", [])]
    eliminated = Counter([state["reason"]]) if state.get("reason") else Counter[str]()
    trajectories = await _solve_all(g, tasks)
    return Work(trajectories, {"instructions": len(tasks), "evolved": len(tasks) - 1,
                               "eliminated": dict(eliminated),
                               "instruct_usage": state.get("usage", Usage()).model_dump()})


async def _selfalign(g: Graphs, seed: Seed) -> Work:
    assert g.instruct is not None
    async with g.gate:
        state = await g.graph("selfalign").ainvoke({"seed": seed}, context=g.instruct,
                                                   config=g.config("selfalign", seed.id))
    tasks: list[Task] = state.get("tasks", [])
    detail: dict[str, Any] = {"instructions": len(tasks), "instruct_usage": state.get("usage", Usage()).model_dump()}
    if not tasks:
        detail["no_instruction"] = "concepts" if not state.get("concepts") else "instruction"
        detail["errors"] = state.get("errors", [])
    return Work(await _solve_all(g, tasks), detail)


async def _solve_one(g: Graphs, task: Task) -> Work:
    return Work([await _solve(g, task)], {"instructions": 1})


def runner(pipeline: str) -> Callable[[Graphs, Any], Awaitable[Work]]:
    """The coroutine function that does one input of ``pipeline``."""
    runs: dict[str, Callable[[Graphs, Any], Awaitable[Work]]] = {
        "solve": _solve_one, "evol+solve": _evolve, "selfalign+solve": _selfalign}
    return runs[pipeline]


def failed(task: Task, error: BaseException, model: str) -> Trajectory:
    """The trajectory of a task the graph crashed on: a recorded failure, so the input is not redone forever."""
    return Trajectory(id=f"t-{thread_id(task.id)}", task=task, verdict="failed", model=model,
                      reason=f"internal_error: {type(error).__name__}: {error}"[:500])
