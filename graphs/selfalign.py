"""SelfCodeAlign's instruction generation as a graph: one seed function in, instructions out.

    concepts (the conceptor lists the concepts the seed exercises, few-shot)
      -> write (``selfalign.per_seed`` instructions from the concepts, each with a category drawn
         50/25/25 % function/class/program and a difficulty drawn uniformly, few-shot)

The instructions then go to the solve graph, whose plan fan-out is SelfCodeAlign's "several
(response, tests) samples per instruction, keep one that passes". ``run_instruct`` runs the graph
over a seed file, streaming tasks to disk and skipping seeds already done.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Required, TypedDict

from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from pydantic import BaseModel, ConfigDict

from agents import conceptor, keyed_random
from codestill.records import JsonlAppender, read_appended
from codestill.schemas import SCHEMA_VERSION, Origin, Seed, Task, Usage
from graphs._deps import InstructDeps, node


class SelfAlignState(TypedDict, total=False):
    seed: Required[Seed]  # the graph's input
    concepts: list[str]
    tasks: list[Task]
    errors: list[str]
    usage: Usage


class NoInstruction(BaseModel):
    """A seed (or one of its instructions) that produced nothing, and why."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: int = SCHEMA_VERSION
    seed_id: str
    stage: str  # "concepts" | "instruction"
    error: str


def draw(categories: Mapping[str, float], difficulties: Sequence[str], key: str) -> tuple[str, str]:
    """(category, difficulty) for one instruction: categories by their shares, difficulties uniform."""
    rng = keyed_random(f"{key}|draw")
    names = list(categories)
    category = rng.choices(names, weights=[categories[n] for n in names])[0]
    return category, rng.choice(list(difficulties))


async def concepts(state: SelfAlignState, config: RunnableConfig, runtime: Runtime[InstructDeps]) -> dict[str, Any]:
    deps, seed = runtime.context, state["seed"]
    reply = await conceptor.concepts(deps.model, seed.code, n_shots=deps.selfalign.shots,
                                     key=f"{deps.selfalign.seed}|{seed.id}", **deps.call_options(config, "conceptor"))
    if reply.value is None:
        return {"concepts": [], "errors": [f"concepts: {reply.error}"], "usage": reply.usage}
    found = [c.strip() for c in reply.value.concepts if c.strip()]
    return {"concepts": found, "errors": [] if found else ["concepts: the model listed none"], "usage": reply.usage}


async def write(state: SelfAlignState, config: RunnableConfig, runtime: Runtime[InstructDeps]) -> dict[str, Any]:
    deps, seed, cfg = runtime.context, state["seed"], runtime.context.selfalign
    found = state.get("concepts", [])  # routed here only with some
    draws = [draw(cfg.categories, cfg.difficulties, f"{cfg.seed}|{seed.id}|{k}") for k in range(cfg.per_seed)]
    replies = await asyncio.gather(*(conceptor.instruction(
        deps.model, found, category, difficulty, n_shots=cfg.shots, key=f"{cfg.seed}|{seed.id}|{k}",
        **deps.call_options(config, "conceptor")) for k, (category, difficulty) in enumerate(draws)))
    tasks, errors, usage = [], list(state.get("errors", [])), state.get("usage", Usage())
    for k, ((category, difficulty), reply) in enumerate(zip(draws, replies, strict=True)):
        usage += reply.usage
        if reply.value is None or not reply.value.instruction.strip():
            errors.append(f"instruction {k}: {reply.error or 'empty'}")
            continue
        origin = Origin(seed_id=seed.id, concepts=tuple(found), category=category, difficulty=difficulty)
        tasks.append(Task(id=f"{seed.id}~i{k}", instruction=reply.value.instruction.strip(), source="selfalign",
                          lineage=(seed.id,), origin=origin))
    return {"tasks": tasks, "errors": errors, "usage": usage}


async def _after_concepts(state: SelfAlignState) -> str:
    return "write" if state.get("concepts") else END


def build_graph() -> Any:
    g = StateGraph(SelfAlignState, context_schema=InstructDeps)
    g.add_node("concepts", node(concepts))
    g.add_node("write", node(write))
    g.add_edge(START, "concepts")
    g.add_conditional_edges("concepts", _after_concepts, ["write", END])
    g.add_edge("write", END)
    return g.compile()



def failed_path(out: Path) -> Path:
    return out.with_name(out.stem + ".failed.jsonl")


def seeds_done(out: Path) -> set[str]:
    """The seeds ``out`` is done with: each has an instruction in it, or a recorded failure beside it."""
    done = {t.origin.seed_id for t in read_appended(out, Task) if t.origin is not None and t.origin.seed_id}
    return done | {f.seed_id for f in read_appended(failed_path(out), NoInstruction)}


async def run_instruct(seeds: Sequence[Seed], deps: InstructDeps, out: Path, *,
                       on_result: Callable[[Seed, list[Task], list[str]], None] | None = None) -> Usage:
    """Instructions for every seed not yet done in ``out`` (``seeds_done``)."""
    done = seeds_done(out)
    todo = [s for s in seeds if s.id not in done]
    sem, usage, compiled = asyncio.Semaphore(deps.selfalign_concurrency), Usage(), build_graph()
    with JsonlAppender(out) as sink, JsonlAppender(failed_path(out)) as failed:

        async def one(seed: Seed) -> None:
            nonlocal usage
            async with sem:
                state = await compiled.ainvoke({"seed": seed}, context=deps,
                                               config={"run_name": "selfalign", "metadata": {"seed_id": seed.id}})
            usage += state.get("usage", Usage())
            tasks, errors = state.get("tasks", []), state.get("errors", [])
            for t in tasks:
                sink.write(t)
            if not tasks:
                stage = "concepts" if not state.get("concepts") else "instruction"
                failed.write(NoInstruction(seed_id=seed.id, stage=stage, error="; ".join(errors) or "none written"))
            if on_result is not None:
                on_result(seed, tasks, errors)

        await asyncio.gather(*(one(s) for s in todo))
    return usage
