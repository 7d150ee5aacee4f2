"""The evolver (Code Evol-Instruct): make an instruction a bit harder with one of WizardCoder's five
code heuristics, and drop the evolutions that failed.

A failed evolution is eliminated for one of these reasons, checked in this order:

    no_answer      the model gave no usable reply (after the client's retries and the repair re-asks)
    unchanged      the text equals its parent, or changes fewer than ``min_changed_words`` words
    copied_prompt  it copies the prompt's own words ("#Rewritten Prompt#", "increase the difficulty", ...)
                   that its parent did not already contain
    refusal        it is a refusal ("I'm sorry, but I can't ...")
    lost_task      a judge call says it is no longer a solvable programming task with a clear
                   input/output contract

The first four are rules on the text (``screen``); the last is a model call (``judge``).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from typing import Literal

from langchain_core.language_models import BaseChatModel
from langchain_core.runnables import RunnableConfig
from pydantic import Field

from agents._answers import _Answer
from agents._common import call, keyed_random
from agents._prompts import prompt, render
from codestill.config import HEURISTICS
from codestill.structured import Method, Reply

Heuristic = Literal["constraints", "specific", "reasoning", "misdirection", "complexity"]
Elimination = Literal["no_answer", "unchanged", "copied_prompt", "refusal", "lost_task"]
ELIMINATIONS: tuple[Elimination, ...] = ("no_answer", "unchanged", "copied_prompt", "refusal", "lost_task")

# Words of the evolution prompt that have no place in a task (lower case, compared case-blind).
TEMPLATE_WORDS = ("#rewritten prompt#", "#given prompt#", "rewritten prompt", "given prompt",
                  "increase the difficulty", "programming test question", "#task#")
_REFUSAL = re.compile(r"^\W*(?:i'?m sorry|i am sorry|sorry,|i cannot|i can'?t|i can not|i'?m unable|i am unable"
                      r"|i won'?t|as an ai\b|unfortunately,? i)", re.I)
_WORD = re.compile(r"\w+|[^\w\s]")


class EvolvedAnswer(_Answer):
    instruction: str = Field(description="The rewritten task, complete and on its own.")


class JudgeAnswer(_Answer):
    solvable: bool = Field(description="True if the text is a solvable programming task with a clear "
                                       "input/output contract.")
    reason: str = Field(default="", description="One sentence: why.")


def pick_heuristic(weights: Mapping[str, float], key: str) -> Heuristic:
    """A heuristic drawn by ``weights``, the same for the same ``key`` (seed, instruction, round)."""
    names = [h for h in HEURISTICS if weights.get(h, 0.0) > 0]
    total = sum(weights[h] for h in names)
    x = keyed_random(key).random() * total
    for h in names:
        x -= weights[h]
        if x < 0:
            return h  # type: ignore[return-value]
    return names[-1]  # type: ignore[return-value]


def changed_words(parent: str, child: str) -> int:
    """Words (and punctuation marks) inserted, deleted or replaced from ``parent`` to ``child``."""
    a, b = _WORD.findall(parent.lower()), _WORD.findall(child.lower())
    ops = difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes()
    return sum(max(i2 - i1, j2 - j1) for tag, i1, i2, j1, j2 in ops if tag != "equal")


def screen(parent: str, child: str, *, min_changed_words: int = 3) -> Elimination | None:
    """The text rules: why ``child`` is a failed evolution of ``parent``, or None if it passes them."""
    if changed_words(parent, child) < min_changed_words:
        return "unchanged"
    low, parent_low = child.lower(), parent.lower()
    if any(w in low and w not in parent_low for w in TEMPLATE_WORDS):
        return "copied_prompt"
    if _REFUSAL.search(child):
        return "refusal"
    return None


async def evolve(model: BaseChatModel, instruction: str, heuristic: Heuristic, *,
                 config: RunnableConfig | None = None, method: Method = "auto",
                 repair_rounds: int = 1, max_tokens: int | None = None) -> Reply[EvolvedAnswer]:
    """``instruction`` rewritten to be a bit harder with ``heuristic``."""
    user = render("evolver_user", method=prompt(f"evol_{heuristic}").strip(), instruction=instruction.strip())
    return await call(model, "evolver", user, EvolvedAnswer, config=config, method=method,
                      repair_rounds=repair_rounds, max_tokens=max_tokens)


async def judge(model: BaseChatModel, instruction: str, *, config: RunnableConfig | None = None,
                method: Method = "auto", repair_rounds: int = 1, max_tokens: int | None = None) -> Reply[JudgeAnswer]:
    """Whether ``instruction`` is still a solvable programming task with a clear contract."""
    user = render("evolver_judge_user", instruction=instruction.strip())
    return await call(model, "evolver", user, JudgeAnswer, config=config, method=method,
                      repair_rounds=repair_rounds, max_tokens=max_tokens)
