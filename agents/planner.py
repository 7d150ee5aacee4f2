"""The planner (CodePLAN): solution plans in words, forward from the task or backward from code.

Forward plans are sampled several times per task and the one whose code passes is kept; a replan
shows the model why the earlier plans failed. A backward plan is written from a verified solution
alone: the prompt shows only the code (in a ```python fence, the last block of the message), never
the task's text, so the plan explains *this* code. Backward plans are CodePLAN's plan-training data.
"""

from __future__ import annotations

from langchain_core.language_models import BaseChatModel
from langchain_core.runnables import RunnableConfig

from agents._answers import PlanAnswer
from agents._common import call, task_section
from agents._prompts import fenced, render
from codestill.schemas import Task
from codestill.structured import Method, Reply


async def plan(model: BaseChatModel, task: Task, *, feedback: str | None = None,
               config: RunnableConfig | None = None, method: Method = "auto",
               repair_rounds: int = 1, max_tokens: int | None = None) -> Reply[PlanAnswer]:
    """A forward plan for ``task``; ``feedback`` says why the previous plans failed (a replan).

    The feedback is shown as text after the task; it should not carry a ```python solution block
    (that would read as a request for a backward plan).
    """
    why = (feedback or "").strip()
    replan = "\n\n" + render("planner_replan", feedback=why) if why else ""
    user = render("planner_user", task=task_section(task), replan=replan)
    return await call(model, "planner", user, PlanAnswer, config=config, method=method,
                      repair_rounds=repair_rounds, max_tokens=max_tokens)


async def backward_plan(model: BaseChatModel, code: str, *, config: RunnableConfig | None = None,
                        method: Method = "auto", repair_rounds: int = 1, max_tokens: int | None = None) -> Reply[PlanAnswer]:
    """The plan that leads to ``code`` (a verified solution), from the code alone."""
    user = render("planner_backward_user", code=fenced(code))
    return await call(model, "planner", user, PlanAnswer, config=config, method=method,
                      repair_rounds=repair_rounds, max_tokens=max_tokens)
