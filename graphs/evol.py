"""Code Evol-Instruct (WizardCoder) as a graph: one lineage, evolved round after round.

    evolve (the evolver, with the heuristic drawn for this instruction and round; then the text rules:
            unchanged, copied prompt, refusal)
      -> judge (is it still a solvable task?; skipped with ``evol.judge`` off)
      -> the next round from the survivor, until ``last_round`` (default: ``round``, one evolution)

An evolution that fails any check is eliminated with its reason (``agents.evolver.ELIMINATIONS``) and
its lineage ends there. Each decided round goes out on LangGraph's custom stream as an ``Outcome``
(the survivor, or the elimination) the moment it is decided, so a caller that streams
(``codestill.run._rounds.run_rounds``) writes it at once; the final state lists the survivors in ``made``.

Why one run per lineage, not per round, and the text rules inside the evolve node: a LangGraph run
costs ~0.4 ms of CPU to set up and ~0.2 ms per step, on the order of the model call it wraps in a
batch of thousands (``bench/instruct_throughput.py``); and a lineage that moves on when its own call
returns waits for no other lineage's slowest call. Nodes and routing functions are coroutine
functions (see ``graphs.solve``: no worker-thread hop).
"""

from __future__ import annotations

import operator
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Required, TypedDict

from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime

from agents import evolver
from codestill.schemas import Origin, Task, Usage
from graphs._deps import InstructDeps, node

_ROUND = re.compile(r"#r\d+$")


class EvolState(TypedDict, total=False):
    task: Required[Task]  # the parent of the evolution in progress: the original, then each round's survivor
    round: Required[int]  # the round of that evolution (1 = the first evolution of an original)
    last_round: int  # evolve until this round; absent: ``round`` (one evolution)
    heuristic: str
    text: str
    reason: str | None  # why the evolution was eliminated; None while it survives
    why: str  # the judge's sentence, or the model's error
    round_usage: Usage  # this round's calls
    usage: Usage  # every call of this run
    made: Annotated[list[Task], operator.add]  # this run's survivors, in round order


@dataclass(frozen=True)
class Outcome:
    """One decided round of one lineage: the survivor (``child``), or why the evolution was eliminated."""

    parent: Task
    round: int
    heuristic: str
    text: str
    reason: str | None
    why: str
    usage: Usage
    child: Task | None


def original_id(task: Task) -> str:
    """The id of the original instruction a task was evolved from (itself for an original)."""
    return _ROUND.sub("", task.id)


def _decided(state: EvolState, update: dict[str, Any], runtime: Runtime[InstructDeps]) -> dict[str, Any]:
    """The round is decided: say so on the stream, and move the lineage to its survivor."""
    now: dict[str, Any] = {**state, **update}
    parent, r = now["task"], now["round"]
    child = None if now.get("reason") else evolved_task(parent, now)
    runtime.stream_writer(Outcome(parent=parent, round=r, heuristic=now["heuristic"], text=now.get("text", ""),
                                  reason=now.get("reason"), why=now.get("why", ""), usage=now["round_usage"],
                                  child=child))
    if child is None:
        return update
    return {**update, "task": child, "round": r + 1, "made": [child]}


async def evolve(state: EvolState, config: RunnableConfig, runtime: Runtime[InstructDeps]) -> dict[str, Any]:
    deps, task = runtime.context, state["task"]
    heuristic = evolver.pick_heuristic(deps.evol.weights, f"{deps.evol.seed}|{original_id(task)}|{state['round']}")
    reply = await evolver.evolve(deps.model, task.instruction, heuristic, **deps.call_options(config, "evolver"))
    update: dict[str, Any] = {"heuristic": heuristic, "round_usage": reply.usage,
                              "usage": state.get("usage", Usage()) + reply.usage, "why": ""}
    if reply.value is None:
        update.update(text=reply.raw, reason="no_answer", why=reply.error or "")
    else:
        text = reply.value.instruction.strip()
        update.update(text=text, reason=evolver.screen(task.instruction, text,
                                                       min_changed_words=deps.evol.min_changed_words))
    if update["reason"] or not deps.evol.judge:
        return _decided(state, update, runtime)
    return update


async def judge(state: EvolState, config: RunnableConfig, runtime: Runtime[InstructDeps]) -> dict[str, Any]:
    deps = runtime.context
    reply = await evolver.judge(deps.model, state.get("text", ""), **deps.call_options(config, "evolver"))
    update: dict[str, Any] = {"round_usage": state.get("round_usage", Usage()) + reply.usage,
                              "usage": state.get("usage", Usage()) + reply.usage}
    if reply.value is None:
        # A judge that cannot answer does not condemn the evolution: the solve graph checks it anyway.
        update.update(reason=None, why=f"judge gave no answer: {reply.error}")
    else:
        update.update(reason=None if reply.value.solvable else "lost_task", why=reply.value.reason)
    return _decided(state, update, runtime)


async def _next(state: EvolState) -> str:
    """After a decided round: the next evolution of the survivor, or the end of the lineage."""
    if state.get("reason") or state["round"] > state.get("last_round", state["round"] - 1):
        return END
    return "evolve"


async def _after_evolve(state: EvolState, runtime: Runtime[InstructDeps]) -> str:
    if not state.get("reason") and runtime.context.evol.judge:
        return "judge"
    return await _next(state)


def build_graph() -> Any:
    g = StateGraph(EvolState, context_schema=InstructDeps)
    g.add_node("evolve", node(evolve))
    g.add_node("judge", node(judge))
    g.add_edge(START, "evolve")
    g.add_conditional_edges("evolve", _after_evolve, ["judge", "evolve", END])
    g.add_conditional_edges("judge", _next, ["evolve", END])
    return g.compile()



def evolved_task(parent: Task, state: Mapping[str, Any]) -> Task:
    """The surviving evolution as a task: id ``<original id>#r<round>``, lineage and origin filled in."""
    r = state["round"]
    seed = parent.origin.seed_id if parent.origin is not None and parent.origin.seed_id else original_id(parent)
    origin = Origin(seed_id=seed, parent_id=parent.id, round=r, heuristic=state["heuristic"],
                    concepts=parent.origin.concepts if parent.origin else (),
                    category=parent.origin.category if parent.origin else None,
                    difficulty=parent.origin.difficulty if parent.origin else None)
    return Task(id=f"{original_id(parent)}#r{r}", instruction=state["text"], source="evol", lineage=(*parent.lineage, parent.id),
                origin=origin)
