"""The conceptor (SelfCodeAlign): a seed function's programming concepts, then a new instruction
written from concepts, a category and a difficulty.

Both steps are few-shot: the examples are data (``prompts/selfalign_shots.jsonl``, our own eight:
snippet, concepts, category, difficulty, instruction), eight of them as in the paper; which eight, and
in which order, is drawn per call from ``key``. They are written into the one user message, each
example's input followed by its answer as JSON, then the request (SelfCodeAlign's own prompts are one
text with the examples inline). Why not one conversation turn per example: a request of 18 messages
costs the OpenAI SDK about 2.5 ms of CPU to prepare (it walks every message against every message
type), more than the rest of the call together, and the instruction stage makes two calls per seed
over tens of thousands of seeds (``bench/instruct_throughput.py``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage, SystemMessage
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


def with_examples(examples: Sequence[tuple[str, Mapping[str, object]]], request: str) -> str:
    """The user message: each example's input and its answer (as JSON), then ``request``."""
    if not examples:
        return request
    blocks = [f"### Example {i}\n\n{user}\n\n### Answer\n{json.dumps(answer)}"
              for i, (user, answer) in enumerate(examples, 1)]
    return render("conceptor_shots", n=str(len(examples)), examples="\n\n".join(blocks), request=request)


async def _ask(model: BaseChatModel, examples: Sequence[tuple[str, Mapping[str, object]]], user: str,
               schema: type[T], *, config: RunnableConfig | None, method: Method, repair_rounds: int,
               max_tokens: int | None = None) -> Reply[T]:
    messages = [SystemMessage(prompt("conceptor")), HumanMessage(with_examples(examples, user))]
    return await ask(model, messages, schema, method=method, repair_rounds=repair_rounds, config=config,
                     role="conceptor", max_tokens=max_tokens)


async def concepts(model: BaseChatModel, snippet: str, *, n_shots: int = 8, key: str = "",
                   config: RunnableConfig | None = None, method: Method = "auto",
                   repair_rounds: int = 1, max_tokens: int | None = None) -> Reply[ConceptsAnswer]:
    """The programming concepts ``snippet`` exercises."""
    examples = [(_concepts_user(s.snippet), {"concepts": list(s.concepts)}) for s in _draw(n_shots, key)]
    return await _ask(model, examples, _concepts_user(snippet), ConceptsAnswer, config=config, method=method,
                      repair_rounds=repair_rounds, max_tokens=max_tokens)


async def instruction(model: BaseChatModel, concepts: Sequence[str], category: str, difficulty: str, *,
                      n_shots: int = 8, key: str = "", config: RunnableConfig | None = None,
                      method: Method = "auto", repair_rounds: int = 1, max_tokens: int | None = None) -> Reply[InstructionAnswer]:
    """A new instruction exercising ``concepts``, of ``category`` and ``difficulty``."""
    examples = [(_instruction_user(s.concepts, s.category, s.difficulty), {"instruction": s.instruction})
                for s in _draw(n_shots, key)]
    return await _ask(model, examples, _instruction_user(concepts, category, difficulty), InstructionAnswer,
                      config=config, method=method, repair_rounds=repair_rounds, max_tokens=max_tokens)
