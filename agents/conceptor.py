"""The conceptor (SelfCodeAlign): a seed function's programming concepts, then a new instruction
written from concepts, a category and a difficulty.

Both steps are few-shot: the examples are data (``prompts/selfalign_shots.jsonl``, our own eight:
snippet, concepts, category, difficulty, instruction), shown as earlier turns of the conversation
(a user turn with the example's input, an assistant turn with its answer as JSON), eight of them as
in the paper; which eight, and in which order, is drawn per call from ``key``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.runnables import RunnableConfig
from pydantic import Field

from agents._answers import _Answer
from agents._common import keyed_random
from agents._prompts import fenced, prompt, render
from codestill.structured import Method, Reply, T, ask


class ConceptsAnswer(_Answer):
    concepts: list[str] = Field(min_length=1, description="Three to eight programming concepts, most important "
                                                          "first, each a short noun phrase.")


class InstructionAnswer(_Answer):
    instruction: str = Field(min_length=1, description="The new task, self-contained, with its examples.")


@dataclass(frozen=True)
class Shot:
    snippet: str
    concepts: tuple[str, ...]
    category: str
    difficulty: str
    instruction: str


@cache
def shots() -> tuple[Shot, ...]:
    """The few-shot examples (read once; shipped as package data)."""
    text = resources.files("agents").joinpath("prompts", "selfalign_shots.jsonl").read_text(encoding="utf-8")
    out = []
    for line in text.splitlines():
        if line.strip():
            rec = json.loads(line)
            out.append(Shot(rec["snippet"], tuple(rec["concepts"]), rec["category"], rec["difficulty"],
                            rec["instruction"]))
    return tuple(out)


def _draw(n: int, key: str) -> list[Shot]:
    pool = list(shots())
    keyed_random(key).shuffle(pool)
    return pool[:n]


def _concepts_user(snippet: str) -> str:
    return render("conceptor_concepts_user", snippet=fenced(snippet))


def _instruction_user(concepts: Sequence[str], category: str, difficulty: str) -> str:
    return render("conceptor_instruction_user", category=category, difficulty=difficulty,
                  concepts=", ".join(concepts))


async def _ask(model: BaseChatModel, turns: list[BaseMessage], user: str, schema: type[T], *,
               config: RunnableConfig | None, method: Method, repair_rounds: int) -> Reply[T]:
    messages = [SystemMessage(prompt("conceptor")), *turns, HumanMessage(user)]
    return await ask(model, messages, schema, method=method, repair_rounds=repair_rounds, config=config)


async def concepts(model: BaseChatModel, snippet: str, *, n_shots: int = 8, key: str = "",
                   config: RunnableConfig | None = None, method: Method = "auto",
                   repair_rounds: int = 1) -> Reply[ConceptsAnswer]:
    """The programming concepts ``snippet`` exercises."""
    turns: list[BaseMessage] = []
    for s in _draw(n_shots, key):
        turns += [HumanMessage(_concepts_user(s.snippet)), AIMessage(json.dumps({"concepts": list(s.concepts)}))]
    return await _ask(model, turns, _concepts_user(snippet), ConceptsAnswer, config=config, method=method,
                      repair_rounds=repair_rounds)


async def instruction(model: BaseChatModel, concepts: Sequence[str], category: str, difficulty: str, *,
                      n_shots: int = 8, key: str = "", config: RunnableConfig | None = None,
                      method: Method = "auto", repair_rounds: int = 1) -> Reply[InstructionAnswer]:
    """A new instruction exercising ``concepts``, of ``category`` and ``difficulty``."""
    turns: list[BaseMessage] = []
    for s in _draw(n_shots, key):
        turns += [HumanMessage(_instruction_user(s.concepts, s.category, s.difficulty)),
                  AIMessage(json.dumps({"instruction": s.instruction}))]
    return await _ask(model, turns, _instruction_user(concepts, category, difficulty), InstructionAnswer,
                      config=config, method=method, repair_rounds=repair_rounds)
