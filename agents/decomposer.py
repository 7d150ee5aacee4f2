"""The decomposer (AMR-Evol, modular decomposition): from the instruction, the plan and a direct
draft, the function modules a solution is made of, as specs (name, signature, description) without
bodies, and which module calls which. Each spec is then looked up in the function-module memory.

The draft is shown in a ```python fence as the last thing of the user message: it is what gets
decomposed (a model, and the simulated teacher, read it there).
"""

from __future__ import annotations

from langchain_core.language_models import BaseChatModel
from langchain_core.runnables import RunnableConfig

from agents._answers import Decomposition
from agents._common import call, plan_text, task_section
from agents._prompts import fenced, render
from codestill.schemas import Plan, Task
from codestill.structured import Method, Reply


async def decompose(model: BaseChatModel, task: Task, plan: Plan, draft: str, *,
                    config: RunnableConfig | None = None, method: Method = "auto",
                    repair_rounds: int = 1, max_tokens: int | None = None) -> Reply[Decomposition]:
    """The module specs of a solution to ``task`` that follows ``plan``, read off ``draft``."""
    user = render("decomposer_user", task=task_section(task), plan=plan_text(plan), draft=fenced(draft))
    return await call(model, "decomposer", user, Decomposition, config=config, method=method,
                      repair_rounds=repair_rounds, max_tokens=max_tokens)
