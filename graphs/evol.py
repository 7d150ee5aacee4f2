"""Code Evol-Instruct (WizardCoder) as a graph: one instruction, one round, one heuristic.

    evolve (the evolver, with the heuristic drawn for this instruction and round)
      -> screen (the text rules: unchanged, copied prompt, refusal)
      -> judge (is it still a solvable task?; skipped with ``evol.judge`` off)

An evolution that fails any of them is eliminated with its reason (``agents.evolver.ELIMINATIONS``).
``run_rounds`` (``graphs._rounds``) evolves each round's survivors again, keeping every round.
Nodes and routing functions are coroutine functions (see ``graphs.solve``: no worker-thread hop).
"""

from __future__ import annotations

import re
from typing import Any, TypedDict

from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime

from agents import evolver
from codestill.schemas import Origin, Task, Usage
from graphs._deps import InstructDeps

_ROUND = re.compile(r"#r\d+$")


class EvolState(TypedDict, total=False):
    task: Task  # the parent
    round: int  # the round this evolution belongs to (1 = the first evolution of an original)
    heuristic: str
    text: str
    reason: str | None  # why the evolution was eliminated; None while it survives
    why: str  # the judge's sentence, or the model's error
    usage: Usage


def original_id(task: Task) -> str:
    """The id of the original instruction a task was evolved from (itself for an original)."""
    return _ROUND.sub("", task.id)


async def evolve(state: EvolState, config: RunnableConfig, runtime: Runtime[InstructDeps]) -> dict[str, Any]:
    deps, task = runtime.context, state["task"]
    heuristic = evolver.pick_heuristic(deps.evol.weights, f"{deps.evol.seed}|{original_id(task)}|{state['round']}")
    reply = await evolver.evolve(deps.model, task.instruction, heuristic, **deps.call_options(config))
    if reply.value is None:
        return {"heuristic": heuristic, "text": reply.raw, "reason": "no_answer", "why": reply.error or "",
                "usage": reply.usage}
    return {"heuristic": heuristic, "text": reply.value.instruction.strip(), "reason": None, "usage": reply.usage}


async def screen(state: EvolState, runtime: Runtime[InstructDeps]) -> dict[str, Any]:
    reason = evolver.screen(state["task"].instruction, state["text"],
                            min_changed_words=runtime.context.evol.min_changed_words)
    return {"reason": reason}


async def judge(state: EvolState, config: RunnableConfig, runtime: Runtime[InstructDeps]) -> dict[str, Any]:
    deps = runtime.context
    reply = await evolver.judge(deps.model, state["text"], **deps.call_options(config))
    usage = state.get("usage", Usage()) + reply.usage
    if reply.value is None:
        # A judge that cannot answer does not condemn the evolution: the solve graph checks it anyway.
        return {"why": f"judge gave no answer: {reply.error}", "usage": usage}
    return {"reason": None if reply.value.solvable else "lost_task", "why": reply.value.reason, "usage": usage}


async def _after_evolve(state: EvolState) -> str:
    return END if state.get("reason") else "screen"


async def _after_screen(state: EvolState, runtime: Runtime[InstructDeps]) -> str:
    return END if state.get("reason") or not runtime.context.evol.judge else "judge"


def build_graph() -> Any:
    g = StateGraph(EvolState, context_schema=InstructDeps)
    g.add_node("evolve", evolve)
    g.add_node("screen", screen)
    g.add_node("judge", judge)
    g.add_edge(START, "evolve")
    g.add_conditional_edges("evolve", _after_evolve, ["screen", END])
    g.add_conditional_edges("screen", _after_screen, ["judge", END])
    g.add_edge("judge", END)
    return g.compile()


graph = build_graph()  # what langgraph.json points LangGraph Studio at


def evolved_task(parent: Task, state: EvolState) -> Task:
    """The surviving evolution as a task: id ``<original id>#r<round>``, lineage and origin filled in."""
    r = state["round"]
    seed = parent.origin.seed_id if parent.origin is not None and parent.origin.seed_id else original_id(parent)
    origin = Origin(seed_id=seed, parent_id=parent.id, round=r, heuristic=state["heuristic"],
                    concepts=parent.origin.concepts if parent.origin else (),
                    category=parent.origin.category if parent.origin else None,
                    difficulty=parent.origin.difficulty if parent.origin else None)
    return Task(id=f"{original_id(parent)}#r{r}", instruction=state["text"], source="evol", lineage=(*parent.lineage, parent.id),
                origin=origin)
